// The typed analytics tools as MCP clients see them, over Streamable HTTP against one spawned server (embedded
// backend), with the official SDK clients of both generations: tools/list declares an outputSchema and read-only
// annotations for each; every answer carries structuredContent that the clients themselves validate against the
// listed outputSchema (both SDKs refuse an answer that does not match) and a short text; figures agree with SQL
// run through execute_sales_query with an explicit store filter; RLS and name refusals reach the client as tool
// errors. The figures themselves are checked against owner SQL on both backends in analytics-golden.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { HEAD_OFFICE_USER_ID, REGIONAL_MANAGERS, STORES } from '../src/data/stores.js';
import type { TestDatabase } from './support/databases.js';
import { CLIENT_KINDS, connectHttp, query, startEmbeddedHttpServer, textOf, type Client, type HttpServerProcess } from './mcp-harness.js';

const SEATTLE = STORES.find((s) => s.name === 'Zava Retail Seattle')!;
const PUGET_SOUND = REGIONAL_MANAGERS[0]!;
const TYPED_TOOLS = ['sales_summary', 'top_products', 'compare_periods', 'store_performance', 'inventory_status', 'seasonality'];

/** One representative call per tool. */
const CALLS: Array<[string, Record<string, unknown>]> = [
  ['sales_summary', { period: 'last_quarter', group_by: 'category' }],
  ['sales_summary', { period: { from: '2025-01-01', to: '2025-06-30' }, group_by: 'month', filters: { categories: ['Power Tools'] } }],
  ['top_products', { period: 'this_year', by: 'units', limit: 5 }],
  ['compare_periods', { current: 'last_quarter', previous: 'same_period_last_year', group_by: 'category' }],
  ['store_performance', { period: 'ytd' }],
  ['inventory_status', { below_days_of_cover: 30, limit: 10 }],
  ['seasonality', { category: 'Garden & Outdoor' }],
];

describe('typed analytics tools over MCP (embedded backend, HTTP)', () => {
  let t: TestDatabase;
  let http: HttpServerProcess;

  before(async () => {
    ({ t, http } = await startEmbeddedHttpServer());
  });
  after(async () => {
    await http?.stop();
    await t?.cleanup();
  });

  for (const kind of CLIENT_KINDS) {
    describe(`${kind} client`, () => {
      let headOffice: Client;
      let seattle: Client;
      let regional: Client;

      before(async () => {
        headOffice = await connectHttp(http.url, HEAD_OFFICE_USER_ID, kind);
        seattle = await connectHttp(http.url, SEATTLE.managerId, kind);
        regional = await connectHttp(http.url, PUGET_SOUND.managerId, kind);
        // The clients validate structuredContent against the outputSchema they listed: list first.
        for (const client of [headOffice, seattle, regional]) await client.listTools();
      });
      after(async () => {
        for (const client of [headOffice, seattle, regional]) await client?.close();
      });

      test('tools/list: each typed tool with an input and output schema and read-only annotations', async () => {
        const { tools } = await headOffice.listTools();
        for (const name of TYPED_TOOLS) {
          const tool = tools.find((candidate) => candidate.name === name);
          assert.ok(tool, `${name} listed`);
          assert.equal(tool.outputSchema?.type, 'object', `${name}: outputSchema`);
          assert.equal(tool.inputSchema.type, 'object');
          assert.deepEqual(
            [tool.annotations?.readOnlyHint, tool.annotations?.destructiveHint, tool.annotations?.openWorldHint],
            [true, false, false],
            `${name}: read-only annotations`,
          );
        }
        assert.ok(tools.some((tool) => tool.name === 'execute_sales_query'), 'the compatible tools stay');
      });

      test('every representative call answers structuredContent (validated by the client) and a short text with the resolved period', async () => {
        for (const client of [headOffice, seattle, regional]) {
          for (const [name, args] of CALLS) {
            const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
            assert.notEqual(result.isError, true, `${name}: ${textOf(result)}`);
            assert.ok(result.structuredContent, `${name}: structuredContent`);
            const text = textOf(result);
            assert.ok(text.length > 0 && text.length < 20_000, `${name}: a short text`);
            const structured = result.structuredContent as Record<string, { from?: string; to?: string } | undefined>;
            const period = structured.period ?? structured.current ?? structured.velocity_window;
            if (period) assert.ok(text.includes(`${period.from} to ${period.to}`), `${name}: the text shows the resolved dates`);
          }
        }
      });

      test('sales by store for 2025 equals SQL through execute_sales_query; a store manager sees their own figure', async () => {
        const result = (await headOffice.callTool({ name: 'sales_summary', arguments: { period: '2025', group_by: 'store' } })) as CallToolResult;
        const summary = result.structuredContent as { groups: Array<{ key: string; revenue: number; orders: number; units: number }>; totals: { revenue: number } };
        const sql = await query(
          headOffice,
          `SELECT s.store_name, sum(oi.total_amount), count(DISTINCT o.order_id), sum(oi.quantity)
             FROM retail.orders o JOIN retail.order_items oi ON oi.order_id = o.order_id JOIN retail.stores s ON s.store_id = o.store_id
            WHERE o.order_date BETWEEN '2025-01-01' AND '2025-12-31' AND o.store_id IN (${STORES.map((s) => s.storeId).join(',')})
            GROUP BY s.store_name ORDER BY 2 DESC`,
        );
        assert.equal(sql.isError, false);
        assert.deepEqual(
          summary.groups.map((g) => [g.key, Math.round(g.revenue * 100), g.orders, g.units]),
          sql.result.r.map((row) => [row[0], Math.round(Number(row[1]) * 100), Number(row[2]), Number(row[3])]),
        );
        const own = (await seattle.callTool({ name: 'sales_summary', arguments: { period: '2025' } })) as CallToolResult;
        const ownTotals = (own.structuredContent as { totals: { revenue: number } }).totals;
        assert.equal(ownTotals.revenue, summary.groups.find((g) => g.key === SEATTLE.name)!.revenue, 'RLS: the Seattle manager sees Seattle');
      });

      test('refusals reach the client as tool errors: another store, unknown names, no identity', async () => {
        const notYours = (await seattle.callTool({ name: 'store_performance', arguments: { store: 'Zava Retail Bellevue', period: 'ytd' } })) as CallToolResult;
        assert.equal(notYours.isError, true);
        assert.match(textOf(notYours), /"Zava Retail Bellevue" is not in your stores/);
        const unknown = (await regional.callTool({ name: 'top_products', arguments: { period: 'ytd', category: 'Toys' } })) as CallToolResult;
        assert.equal(unknown.isError, true);
        assert.match(textOf(unknown), /unknown category "Toys"\. Valid categories: /);
        const period = (await seattle.callTool({ name: 'sales_summary', arguments: { period: 'the other day' } })) as CallToolResult;
        assert.equal(period.isError, true);
        assert.match(textOf(period), /unknown period/);
        const nobody = await connectHttp(http.url, undefined, kind);
        try {
          await nobody.listTools();
          const refused = (await nobody.callTool({ name: 'sales_summary', arguments: { period: 'ytd' } })) as CallToolResult;
          assert.equal(refused.isError, true);
          assert.match(textOf(refused), /identity/i);
        } finally {
          await nobody.close();
        }
      });
    });
  }
});
