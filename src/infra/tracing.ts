// OpenTelemetry traces, when OTEL_EXPORTER_OTLP_ENDPOINT is set: a span per tool call with child spans for the
// SQL guard, each database statement and the query embedding, exported over OTLP/HTTP by the official SDK
// (which also reads the standard OTEL_* settings: headers, service name, batch delays). Decisions:
// - Off by default and free when off: the SDK is imported only when tracing starts, and `inSpan` calls the work
//   directly while tracing is off — no context object, no span, no closure beyond the call itself.
// - The trace and span ids go into every log line written inside a span (the logger's mixin), so a slow call's
//   log lines and its trace find each other.
// - Spans carry the tool, the identity's role and row counts; never SQL text with its literals or who called.
import { context, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import { PACKAGE_VERSION } from './version.js';

let enabled = false;
const tracer = trace.getTracer('zava-mcp', PACKAGE_VERSION);

export interface Tracing {
  shutdown(): Promise<void>;
}

/** Starts exporting when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set. */
export async function startTracing(env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'zava-mcp', 'service.version': PACKAGE_VERSION }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register(); // the global provider, and AsyncLocalStorage so child spans find their parent
  enabled = true;
  return {
    async shutdown() {
      enabled = false;
      await provider.shutdown(); // flushes what is still batched
    },
  };
}

/** Runs `work` inside a span named `name` (a child of the current one), recording failure; plain call when off. */
export function inSpan<T>(name: string, attributes: Attributes, work: () => Promise<T>): Promise<T> {
  if (!enabled) return work();
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work();
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Adds attributes to the current span (no-op when off or outside a span). */
export function annotateSpan(attributes: Attributes): void {
  if (enabled) trace.getSpan(context.active())?.setAttributes(attributes);
}

/** The current trace and span ids, for log lines (empty when off or outside a span). */
export function traceFields(): Record<string, string> {
  if (!enabled) return {};
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}
