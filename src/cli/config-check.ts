// `zava-mcp config check`: validates the configuration the way `serve` would (every setting, with a message
// naming the variable at fault) and prints the effective values, secrets masked: passwords and API keys as
// ***, connection URLs with their password replaced. Nothing is opened or connected.
import { redactUrl, type Config } from '../infra/config.js';
import { embeddingSettings } from '../search/settings.js';

/** Names whose values are secrets wherever they appear. */
const SECRET = /password|secret|apikey|api_key|token|privatekey/i;
/** Names whose values are URLs that may carry a password. */
const URL_VALUE = /url$/i;

export function maskSecrets(value: unknown, name = ''): unknown {
  if (value === undefined || value === null) return value;
  if (typeof value === 'string') {
    if (SECRET.test(name)) return '***';
    if (URL_VALUE.test(name) || /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(value)) return redactUrl(value);
    return value;
  }
  if (Array.isArray(value)) return value.map((item) => maskSecrets(item, name));
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, maskSecrets(item, key)]));
  }
  return value;
}

export function runConfigCheck(config: Config, out: NodeJS.WritableStream = process.stdout, env: NodeJS.ProcessEnv = process.env): number {
  const { env: _env, ...embedding } = embeddingSettings(env); // validated like serve does; the raw environment is not printed
  const effective = maskSecrets({ ...config, backend: config.databaseUrl ? 'server' : 'embedded', embedding }) as Record<string, unknown>;
  out.write(`${JSON.stringify(effective, null, 2)}\nconfiguration is valid\n`);
  return 0;
}
