// The typed analytics tools as MCP clients see them, over Streamable HTTP against one spawned server (embedded
// backend), with the official SDK clients of both generations: tools/list declares an outputSchema and read-only
// annotations for each; every answer carries structuredContent that the clients themselves validate against the
// listed outputSchema (both SDKs refuse an answer that does not match) and a short text; figures agree with SQL
// run through execute_sales_query with an explicit store filter; RLS and name refusals reach the client as tool
// errors. The last suite drives the same surface over stdio on the PostgreSQL backend, with both client generations.
// The figures themselves are checked against owner SQL on both backends in analytics-golden.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { HEAD_OFFICE_USER_ID, REGIONAL_MANAGERS, STORES } from '../src/data/stores.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { CLIENT_KINDS, connectHttp, connectStdio, query, startEmbeddedHttpServer, textOf, type Client, type HttpServerProcess, type StdioConnection } from './mcp-harness.js';

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

      test('resources: the table schemas (shared with get_multiple_table_schemas) and the categories, listed per caller', async () => {
        const { resources } = await seattle.listResources();
        const uris = resources.map((r) => r.uri);
        for (const table of ['retail.orders', 'retail.order_items', 'retail.stores', 'retail.categories', 'retail.products', 'retail.customers', 'retail.inventory']) {
          assert.ok(uris.includes(`zava://schema/${table}`), `${table} listed`);
        }
        assert.ok(uris.includes('zava://catalog/categories'));
        assert.ok(resources.every((r) => r.mimeType === 'application/json' && r.name));
        const { resourceTemplates } = await seattle.listResourceTemplates();
        assert.deepEqual(resourceTemplates.map((r) => r.uriTemplate), ['zava://schema/{table}']);

        const read = await seattle.readResource({ uri: 'zava://schema/retail.orders' });
        const schema = JSON.parse(read.contents[0]!.text!) as { table: string; values: { order_years: number[] } };
        const tool = (await seattle.callTool({ name: 'get_multiple_table_schemas', arguments: { table_names: ['retail.orders'] } })) as CallToolResult;
        assert.deepEqual(schema, (tool.structuredContent as { tables: unknown[] }).tables[0], 'one implementation: the resource is the tool\'s answer');
        const years = await query(seattle, 'SELECT DISTINCT extract(year FROM order_date)::int FROM retail.orders ORDER BY 1');
        assert.deepEqual(schema.values.order_years, years.result.r.map((row) => Number(row[0])), "the caller's own order years");

        const categories = JSON.parse((await seattle.readResource({ uri: 'zava://catalog/categories' })).contents[0]!.text!) as { categories: Array<{ category: string; products: number; product_types: unknown[] }> };
        const counts = await query(seattle, 'SELECT c.category_name, count(p.product_id) FROM retail.categories c LEFT JOIN retail.products p ON p.category_id = c.category_id GROUP BY 1 ORDER BY 1');
        assert.deepEqual(categories.categories.map((c) => [c.category, c.products]), counts.result.r.map((row) => [row[0], Number(row[1])]));

        await assert.rejects(seattle.readResource({ uri: 'zava://schema/retail.payroll' }), /not found/i);
        const nobody = await connectHttp(http.url, undefined, kind);
        try {
          const listed = await nobody.listResources();
          assert.ok(!listed.resources.some((r) => r.uri.startsWith('zava://schema/')), 'no identity, no tables listed');
          await assert.rejects(nobody.readResource({ uri: 'zava://schema/retail.orders' }), /identity/i);
          await assert.rejects(nobody.readResource({ uri: 'zava://catalog/categories' }), /identity/i);
        } finally {
          await nobody.close();
        }
      });

      test('prompts: the sample questions, steering to the typed tools; answered through them they match reference-style SQL', async () => {
        const { prompts } = await headOffice.listPrompts();
        assert.deepEqual(prompts.map((p) => p.name).sort(), ['sales_by_category', 'sales_by_store', 'sales_trend', 'similar_products', 'top_products_by_revenue']);
        const promptText = async (name: string, args: Record<string, string>) => {
          const got = await headOffice.getPrompt({ name, arguments: args });
          return got.messages.map((m) => m.content.text ?? '').join('\n');
        };
        // "Show top 20 products by sales revenue"
        assert.match(await promptText('top_products_by_revenue', { limit: '20' }), /top_products tool first with \{"period": "all_time", "by": "revenue", "limit": 20\}/);
        const top = (await headOffice.callTool({ name: 'top_products', arguments: { period: 'all_time', by: 'revenue', limit: 20 } })) as CallToolResult;
        const topSql = await query(headOffice, 'SELECT p.product_name, SUM(oi.total_amount) AS revenue FROM retail.order_items oi JOIN retail.products p ON p.product_id = oi.product_id GROUP BY p.product_name, p.sku ORDER BY revenue DESC LIMIT 20');
        assert.deepEqual(
          (top.structuredContent as { products: Array<{ product_name: string; revenue: number }> }).products.map((p) => Math.round(p.revenue * 100)),
          topSql.result.r.map((row) => Math.round(Number(row[1]) * 100)),
        );
        // "Show sales by store"
        assert.match(await promptText('sales_by_store', {}), /sales_summary with \{"period": "all_time", "group_by": "store"\}/);
        const byStore = (await headOffice.callTool({ name: 'sales_summary', arguments: { period: 'all_time', group_by: 'store' } })) as CallToolResult;
        const byStoreSql = await query(headOffice, 'SELECT s.store_name, SUM(oi.total_amount) AS revenue FROM retail.order_items oi JOIN retail.stores s ON s.store_id = oi.store_id GROUP BY s.store_name ORDER BY revenue DESC');
        assert.deepEqual(
          (byStore.structuredContent as { groups: Array<{ key: string; revenue: number }> }).groups.map((g) => [g.key, Math.round(g.revenue * 100)]),
          byStoreSql.result.r.map((row) => [row[0], Math.round(Number(row[1]) * 100)]),
        );
        // "What were the last quarter's sales by category?"
        assert.match(await promptText('sales_by_category', {}), /sales_summary with \{"period": "last_quarter", "group_by": "category"\}/);
        const byCategory = (await headOffice.callTool({ name: 'sales_summary', arguments: { period: 'last_quarter', group_by: 'category' } })) as CallToolResult;
        const resolved = byCategory.structuredContent as { period: { from: string; to: string }; groups: Array<{ key: string; revenue: number }> };
        const byCategorySql = await query(
          headOffice,
          `SELECT c.category_name, SUM(oi.total_amount) AS revenue FROM retail.order_items oi JOIN retail.orders o ON o.order_id = oi.order_id
             JOIN retail.products p ON p.product_id = oi.product_id JOIN retail.categories c ON c.category_id = p.category_id
            WHERE o.order_date >= '${resolved.period.from}' AND o.order_date <= '${resolved.period.to}' GROUP BY c.category_name ORDER BY revenue DESC, c.category_name`,
        );
        assert.deepEqual(resolved.groups.map((g) => [g.key, Math.round(g.revenue * 100)]), byCategorySql.result.r.map((row) => [row[0], Math.round(Number(row[1]) * 100)]));
        // "What products do we sell that are similar to 'containers for paint'?"
        const similar = await promptText('similar_products', { description: 'containers for paint' });
        assert.match(similar, /semantic_search_products with \{"query_description": "containers for paint"\}/);
        const search = (await headOffice.callTool({ name: 'semantic_search_products', arguments: { query_description: 'containers for paint' } })) as CallToolResult;
        assert.ok((search.structuredContent as { n: number }).n > 0, 'the recommended tool finds products');
      });

      test('completion/complete: store, category, type, period and table names, limited to the caller', async () => {
        const values = async (client: Client, ref: Parameters<Client['complete']>[0]['ref'], name: string, value: string) => (await client.complete({ ref, argument: { name, value } })).completion.values;
        const prompt = (name: string) => ({ type: 'ref/prompt' as const, name });
        assert.deepEqual(await values(seattle, prompt('sales_by_category'), 'store', ''), [SEATTLE.name], 'a store manager is offered their store only');
        assert.deepEqual(await values(seattle, prompt('sales_by_category'), 'store', 'Zava Retail B'), []);
        assert.deepEqual(await values(headOffice, prompt('sales_by_category'), 'store', 'zava retail b'), ['Zava Retail Bellevue']);
        const regionalStores = await values(regional, prompt('top_products_by_revenue'), 'store', '');
        assert.deepEqual(regionalStores, STORES.filter((s) => PUGET_SOUND.regions.includes(s.region)).map((s) => s.name));
        assert.deepEqual(await values(seattle, prompt('top_products_by_revenue'), 'category', 'pa'), ['Paint & Supplies']);
        assert.ok((await values(seattle, prompt('sales_trend'), 'product_type', '')).length > 10, 'product types');
        assert.deepEqual(await values(seattle, prompt('sales_trend'), 'period', 'last_q'), ['last_quarter']);
        assert.deepEqual(await values(seattle, { type: 'ref/resource', uri: 'zava://schema/{table}' }, 'table', 'retail.or'), ['retail.orders', 'retail.order_items']);
        assert.deepEqual(await values(seattle, prompt('similar_products'), 'description', 'pa'), [], 'free text is not completed');
        const nobody = await connectHttp(http.url, undefined, kind);
        try {
          assert.deepEqual(await values(nobody, prompt('sales_by_category'), 'store', ''), [], 'no identity, no names');
        } finally {
          await nobody.close();
        }
      });

      test('refusals reach the client as tool errors: another store, unknown names, no identity', async () => {
        const notYours = (await seattle.callTool({ name: 'store_performance', arguments: { store: 'Zava Retail Bellevue', period: 'ytd' } })) as CallToolResult;
        assert.equal(notYours.isError, true);
        assert.match(textOf(notYours), /"Zava Retail Bellevue" is not in your stores/);
        // The stable code rides in _meta (and the text): structuredContent would have to match the output schema.
        assert.equal(notYours._meta?.['zava/code'], 'AUTHORIZATION_ERROR');
        assert.equal(notYours.structuredContent, undefined);
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
          assert.equal(refused._meta?.['zava/code'], 'AUTHORIZATION_ERROR');
        } finally {
          await nobody.close();
        }
      });
    });
  }
});

// The same surface over stdio (the other transport), on the PostgreSQL backend: each client generation lists and
// calls every typed tool (the client validates each answer against the listed outputSchema), reads the resources and
// the template, gets a prompt and completes an argument, as the Seattle manager.
describe('typed analytics tools, resources, prompts and completion over stdio (server backend)', async () => {
  const skip = (await serverUnavailableReason()) ?? false;
  let t: TestDatabase;
  before(async () => {
    if (!skip) t = await createTestDatabase('server', { customers: 40 });
  });
  after(async () => {
    await t?.cleanup();
  });

  for (const kind of CLIENT_KINDS) {
    test(`${kind} client`, { skip, timeout: 120_000 }, async () => {
      const stdio: StdioConnection = await connectStdio(t.flags, SEATTLE.managerId, {}, kind);
      try {
        const { client } = stdio;
        const { tools } = await client.listTools();
        for (const name of TYPED_TOOLS) assert.ok(tools.find((tool) => tool.name === name)?.outputSchema, `${name} with an outputSchema`);
        for (const [name, args] of CALLS) {
          const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
          assert.notEqual(result.isError, true, `${name}: ${textOf(result)}`);
          assert.ok(result.structuredContent, `${name}: structuredContent`);
        }
        const mine = (await client.callTool({ name: 'sales_summary', arguments: { period: 'all_time', group_by: 'store' } })) as CallToolResult;
        const sql = await query(client, 'SELECT s.store_name, SUM(oi.total_amount) FROM retail.order_items oi JOIN retail.stores s ON s.store_id = oi.store_id GROUP BY 1');
        assert.deepEqual(
          (mine.structuredContent as { groups: Array<{ key: string; revenue: number }> }).groups.map((g) => [g.key, Math.round(g.revenue * 100)]),
          sql.result.r.map((row) => [row[0], Math.round(Number(row[1]) * 100)]),
          'only Seattle, to the cent',
        );
        const { resources } = await client.listResources();
        assert.ok(resources.some((r) => r.uri === 'zava://schema/retail.orders') && resources.some((r) => r.uri === 'zava://catalog/categories'));
        assert.deepEqual((await client.listResourceTemplates()).resourceTemplates.map((r) => r.uriTemplate), ['zava://schema/{table}']);
        const schema = JSON.parse((await client.readResource({ uri: 'zava://schema/retail.orders' })).contents[0]!.text!) as { table: string };
        assert.equal(schema.table, 'retail.orders');
        const { prompts } = await client.listPrompts();
        assert.ok(prompts.some((p) => p.name === 'sales_by_store'));
        const prompt = await client.getPrompt({ name: 'sales_by_store', arguments: {} });
        assert.match(prompt.messages.map((m) => m.content.text ?? '').join('\n'), /sales_summary/);
        const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'sales_by_category' }, argument: { name: 'store', value: '' } });
        assert.deepEqual(completion.completion.values, [SEATTLE.name], 'completion limited to the caller');
      } finally {
        await stdio.close();
      }
    });
  }
});
