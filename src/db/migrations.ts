// Versioned migrations, applied in order, each recorded in zava_meta.schema_migrations, all in one owner
// transaction under an advisory lock so concurrent replicas cannot apply the same step twice.
import { newContextKey } from './context.js';
import { refreshMonthlySalesRollup, refreshSalesRollup, salesRollupDdl, salesRollupGrainsDdl } from './sales-rollup.js';
import type { AdminSession, SqlParam } from './types.js';

export interface MigrationContext {
  /** pgvector is installed (embedded always; server when the extension is available). */
  readonly hasVector: boolean;
  readonly queryRole: string;
  readonly queryRolePassword: string | undefined;
  /** temp_file_limit for the query role in this database (PostgreSQL units), or '-1' to leave the server's. */
  readonly tempFileLimit?: string | undefined;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  up(session: AdminSession, context: MigrationContext): Promise<void>;
}

const MIGRATION_LOCK_KEY = 7_362_001; // arbitrary, constant: "zava migrations"

/** SQL identifier quoting; role names are also validated by config. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Tables whose rows belong to one store, and the column that says which. */
export const STORE_SCOPED_TABLES: ReadonlyArray<readonly [table: string, storeColumn: string]> = [
  ['orders', 'store_id'],
  ['order_items', 'store_id'],
  ['inventory', 'store_id'],
  ['customers', 'primary_store_id'],
];

/** Reference tables every authenticated identity may read. */
export const SHARED_TABLES = ['stores', 'categories', 'product_types', 'products', 'product_description_embeddings'] as const;

export const RETAIL_TABLES = [...SHARED_TABLES, ...STORE_SCOPED_TABLES.map(([table]) => table)] as const;

const schema: Migration = {
  version: 1,
  name: 'retail schema',
  async up(session, { hasVector }) {
    if (hasVector) await session.exec('CREATE EXTENSION IF NOT EXISTS vector');
    const embeddingType = hasVector ? 'vector' : 'real[]';
    await session.exec(`
      CREATE SCHEMA IF NOT EXISTS retail;

      CREATE TABLE retail.stores (
        store_id      integer PRIMARY KEY,
        store_name    text NOT NULL UNIQUE,
        rls_user_id   uuid NOT NULL UNIQUE,
        is_online     boolean NOT NULL DEFAULT false,
        region        text NOT NULL
      );

      CREATE TABLE retail.categories (
        category_id   serial PRIMARY KEY,
        category_name text NOT NULL UNIQUE
      );

      CREATE TABLE retail.product_types (
        type_id       serial PRIMARY KEY,
        category_id   integer NOT NULL REFERENCES retail.categories,
        type_name     text NOT NULL,
        UNIQUE (category_id, type_name)
      );

      CREATE TABLE retail.products (
        product_id            serial PRIMARY KEY,
        sku                   text NOT NULL UNIQUE,
        product_name          text NOT NULL,
        category_id           integer NOT NULL REFERENCES retail.categories,
        type_id               integer NOT NULL REFERENCES retail.product_types,
        cost                  numeric(10,2) NOT NULL CHECK (cost >= 0),
        base_price            numeric(10,2) NOT NULL CHECK (base_price > 0),
        gross_margin_percent  numeric(5,2) NOT NULL DEFAULT 33.00,
        product_description   text NOT NULL
      );

      CREATE TABLE retail.customers (
        customer_id       serial PRIMARY KEY,
        first_name        text NOT NULL,
        last_name         text NOT NULL,
        email             text NOT NULL UNIQUE,
        phone             text,
        primary_store_id  integer NOT NULL REFERENCES retail.stores,
        created_at        timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE retail.orders (
        order_id     serial PRIMARY KEY,
        customer_id  integer NOT NULL REFERENCES retail.customers,
        store_id     integer NOT NULL REFERENCES retail.stores,
        order_date   date NOT NULL
      );

      CREATE TABLE retail.order_items (
        order_item_id     serial PRIMARY KEY,
        order_id          integer NOT NULL REFERENCES retail.orders,
        store_id          integer NOT NULL REFERENCES retail.stores,
        product_id        integer NOT NULL REFERENCES retail.products,
        quantity          integer NOT NULL CHECK (quantity > 0),
        unit_price        numeric(10,2) NOT NULL,
        discount_percent  integer NOT NULL DEFAULT 0 CHECK (discount_percent BETWEEN 0 AND 100),
        discount_amount   numeric(10,2) NOT NULL DEFAULT 0,
        total_amount      numeric(12,2) NOT NULL
      );

      CREATE TABLE retail.inventory (
        store_id     integer NOT NULL REFERENCES retail.stores,
        product_id   integer NOT NULL REFERENCES retail.products,
        stock_level  integer NOT NULL CHECK (stock_level >= 0),
        PRIMARY KEY (store_id, product_id)
      );

      CREATE TABLE retail.product_description_embeddings (
        product_id             integer PRIMARY KEY REFERENCES retail.products ON DELETE CASCADE,
        description_embedding  ${embeddingType} NOT NULL,
        model                  text NOT NULL,
        dimensions             integer NOT NULL CHECK (dimensions > 0),
        updated_at             timestamptz NOT NULL DEFAULT now()
      );

      -- Indexes for the analytics the tools run: per store and period, per product, revenue roll-ups.
      CREATE INDEX orders_store_date_idx ON retail.orders (store_id, order_date);
      CREATE INDEX orders_date_idx ON retail.orders (order_date);
      CREATE INDEX orders_customer_idx ON retail.orders (customer_id);
      CREATE INDEX order_items_order_idx ON retail.order_items (order_id);
      CREATE INDEX order_items_product_revenue_idx ON retail.order_items (product_id) INCLUDE (store_id, quantity, total_amount);
      CREATE INDEX order_items_store_revenue_idx ON retail.order_items (store_id, product_id) INCLUDE (order_id, quantity, total_amount);
      CREATE INDEX customers_store_idx ON retail.customers (primary_store_id);
      CREATE INDEX products_category_idx ON retail.products (category_id);
      CREATE INDEX products_type_idx ON retail.products (type_id);
      CREATE INDEX inventory_product_idx ON retail.inventory (product_id);
    `);
  },
};

/**
 * The roles the policies and grants expect — the query role, its sandbox, the head-office role and the views'
 * owner — created when missing, their attributes repaired when wrong, their memberships granted. Roles belong to
 * the cluster, not to one database, so a restore into a new cluster needs them before the dump's grants (see
 * cli/backup.ts).
 */
export async function ensureQueryRoles(session: AdminSession, queryRole: string, queryRolePassword?: string): Promise<void> {
  const sandbox = `${queryRole}_sandbox`;
  const everyStore = everyStoreRole(queryRole);
  const views = viewOwnerRole(queryRole);
  // NOINHERIT: the query role reaches the head-office role only by SET ROLE, so a manager's statements do not take
  // on that role's policies and keep their plain, indexable store check (migration 17).
  await ensureRole(session, queryRole, { login: true, inherit: false });
  if (queryRolePassword) await session.exec(`ALTER ROLE ${quoteIdent(queryRole)} PASSWORD ${quoteLiteral(queryRolePassword)}`);
  // The sandbox role holds no grant of its own: it inherits the query role's SELECTs.
  await ensureRole(session, sandbox, { login: false, inherit: true });
  await ensureMember(session, queryRole, sandbox);
  // The head-office role (migration 17): login-less, reached only by the query role's SET ROLE, holding the query
  // role's privileges (mirrorEveryStoreGrants). The query role is a member so that it may switch to it.
  await ensureRole(session, everyStore, { login: false });
  await ensureMember(session, everyStore, queryRole);
  // The owner of the masking views (migration 9): no privilege beyond what migration 9 grants it, and not the
  // tables' owner, so Row Level Security applies under the views. A restore needs it too.
  await ensureRole(session, views, { login: false, inherit: false });
}

/**
 * Creates a role when missing and repairs it when an attribute differs: never a superuser or able to bypass Row
 * Level Security, create roles or databases, or replicate; LOGIN and INHERIT as asked (INHERIT left as it is when
 * not asked). Roles are cluster-wide, so another database may be creating the same role at the same moment.
 */
async function ensureRole(session: AdminSession, name: string, wanted: { login: boolean; inherit?: boolean }): Promise<void> {
  const role = quoteIdent(name);
  const login = wanted.login ? 'LOGIN' : 'NOLOGIN';
  const inherit = wanted.inherit === undefined ? '' : wanted.inherit ? ' INHERIT' : ' NOINHERIT';
  const differs = [
    'rolsuper', 'rolcreatedb', 'rolcreaterole', 'rolreplication', 'rolbypassrls',
    wanted.login ? 'NOT rolcanlogin' : 'rolcanlogin',
    ...(wanted.inherit === undefined ? [] : [wanted.inherit ? 'NOT rolinherit' : 'rolinherit']),
  ].join(' OR ');
  // Altered only when an attribute differs: the advisory lock is per database, and two databases of one cluster
  // migrating at once would otherwise update the same pg_authid row ("tuple concurrently updated").
  await session.exec(`
    DO $$ BEGIN
      CREATE ROLE ${role} ${login}${inherit};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
    DO $$ BEGIN
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(name)} AND (${differs})) THEN
        ALTER ROLE ${role} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS ${login}${inherit};
      END IF;
    END $$;
  `);
}

/** Makes `member` a member of `role` unless it is one already. */
async function ensureMember(session: AdminSession, role: string, member: string): Promise<void> {
  await session.exec(`
    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles s ON s.oid = m.member
                      WHERE r.rolname = ${quoteLiteral(role)} AND s.rolname = ${quoteLiteral(member)}) THEN
        GRANT ${quoteIdent(role)} TO ${quoteIdent(member)};
      END IF;
    EXCEPTION WHEN unique_violation THEN NULL; -- another database's migration granted it at the same moment
    END $$;
  `);
}

const security: Migration = {
  version: 2,
  name: 'query role, signed RLS context, policies',
  async up(session, { queryRole, queryRolePassword }) {
    const role = quoteIdent(queryRole);
    const sandbox = quoteIdent(`${queryRole}_sandbox`);
    await ensureQueryRoles(session, queryRole, queryRolePassword);

    const key = newContextKey();
    await session.exec(`
      CREATE SCHEMA zava_private;
      REVOKE ALL ON SCHEMA zava_private FROM PUBLIC;
      CREATE TABLE zava_private.context_key (
        id          integer PRIMARY KEY CHECK (id = 1),
        hmac_key    bytea NOT NULL,
        inner_pad   bytea NOT NULL,
        outer_pad   bytea NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now()
      );
      REVOKE ALL ON zava_private.context_key FROM PUBLIC;
      CREATE TABLE zava_private.regional_managers (
        rls_user_id   uuid NOT NULL,
        region        text NOT NULL,
        manager_name  text NOT NULL,
        PRIMARY KEY (rls_user_id, region)
      );
      REVOKE ALL ON zava_private.regional_managers FROM PUBLIC;
    `);
    await session.query(
      `INSERT INTO zava_private.context_key (id, hmac_key, inner_pad, outer_pad)
       VALUES (1, decode($1, 'hex'), decode($2, 'hex'), decode($3, 'hex'))`,
      [key.key.toString('hex'), key.innerPad.toString('hex'), key.outerPad.toString('hex')] satisfies SqlParam[],
    );

    // The policies' only source of identity. verified_scope() returns the signed store scope, or NULL when the
    // context is missing, forged, from another backend or expired.
    await session.exec(`
      CREATE SCHEMA zava_ctx;
      REVOKE ALL ON SCHEMA zava_ctx FROM PUBLIC;
      GRANT USAGE ON SCHEMA zava_ctx TO ${role};

      CREATE FUNCTION zava_ctx.verified_scope() RETURNS text
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
      DECLARE
        raw   text := current_setting('zava.ctx', true);
        parts text[];
        k     record;
      BEGIN
        IF raw IS NULL OR raw = '' THEN RETURN NULL; END IF;
        parts := string_to_array(raw, '.');
        IF cardinality(parts) <> 6 OR parts[1] <> 'v1' THEN RETURN NULL; END IF;
        SELECT inner_pad, outer_pad INTO k FROM zava_private.context_key WHERE id = 1;
        IF NOT FOUND THEN RETURN NULL; END IF;
        IF encode(sha256(k.outer_pad || sha256(k.inner_pad || convert_to(array_to_string(parts[1:5], '.'), 'UTF8'))), 'hex')
           IS DISTINCT FROM parts[6] THEN
          RETURN NULL;
        END IF;
        IF parts[2] IS DISTINCT FROM pg_backend_pid()::text THEN RETURN NULL; END IF;
        IF parts[3] !~ '^[0-9]{1,15}$'
           OR parts[3]::bigint < floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN
          RETURN NULL;
        END IF;
        IF parts[4] !~ '^(\\*|[0-9]+(-[0-9]+)*)?$' THEN RETURN NULL; END IF;
        RETURN parts[4];
      END
      $fn$;

      CREATE FUNCTION zava_ctx.visible_store_ids() RETURNS integer[]
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
        SELECT CASE
                 WHEN scope IS NULL OR scope = '' THEN '{}'::integer[]
                 WHEN scope = '*' THEN ARRAY(SELECT store_id FROM retail.stores ORDER BY store_id)
                 ELSE string_to_array(scope, '-')::integer[]
               END
          FROM zava_ctx.verified_scope() AS scope
      $fn$;

      CREATE FUNCTION zava_ctx.is_authenticated() RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
        SELECT zava_ctx.verified_scope() IS NOT NULL
      $fn$;

      REVOKE ALL ON ALL FUNCTIONS IN SCHEMA zava_ctx FROM PUBLIC;
      GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA zava_ctx TO ${role};
    `);

    // Row Level Security: the subselect makes the check an init plan, run once per query, not per row.
    const statements: string[] = [];
    for (const [table, column] of STORE_SCOPED_TABLES) {
      statements.push(
        `ALTER TABLE retail.${table} ENABLE ROW LEVEL SECURITY`,
        `CREATE POLICY store_scope ON retail.${table} FOR SELECT USING (${column} = ANY ((SELECT zava_ctx.visible_store_ids())::integer[]))`,
      );
    }
    for (const table of SHARED_TABLES) {
      statements.push(
        `ALTER TABLE retail.${table} ENABLE ROW LEVEL SECURITY`,
        `CREATE POLICY authenticated ON retail.${table} FOR SELECT USING ((SELECT zava_ctx.is_authenticated()))`,
      );
    }
    statements.push(
      `REVOKE ALL ON SCHEMA retail FROM PUBLIC`,
      `REVOKE ALL ON ALL TABLES IN SCHEMA retail FROM PUBLIC`,
      `GRANT USAGE ON SCHEMA retail TO ${role}`,
      `GRANT SELECT ON ALL TABLES IN SCHEMA retail TO ${role}`,
    );
    await session.exec(statements.join(';\n'));

    // The embedded backend's sandbox. PGlite runs PostgreSQL in single-user mode, whose session user is always
    // the bootstrap superuser, so a plain SET ROLE could be undone by the query. Inside a SECURITY DEFINER
    // function PostgreSQL refuses any change of role or session authorization, so user SQL executed here runs
    // as the sandbox role (the query role's grants, nothing more) and cannot climb back out.
    await session.exec(`
      CREATE SCHEMA zava_exec;
      REVOKE ALL ON SCHEMA zava_exec FROM PUBLIC;
      GRANT USAGE ON SCHEMA zava_exec TO ${sandbox};
      CREATE FUNCTION zava_exec.run(query text, params text[], max_rows integer) RETURNS SETOF record
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, retail, pg_temp AS $fn$
      DECLARE
        r record;
        n integer := 0;
      BEGIN
        IF coalesce(cardinality(params), 0) > 8 THEN
          RAISE EXCEPTION 'at most 8 query parameters are supported';
        END IF;
        FOR r IN EXECUTE query USING params[1], params[2], params[3], params[4], params[5], params[6], params[7], params[8] LOOP
          n := n + 1;
          EXIT WHEN n > max_rows;
          RETURN NEXT r;
        END LOOP;
      END
      $fn$;
      REVOKE ALL ON FUNCTION zava_exec.run(text, text[], integer) FROM PUBLIC;
      ALTER FUNCTION zava_exec.run(text, text[], integer) OWNER TO ${sandbox};
    `);
  },
};

/**
 * Product search (issue 4): the full-text document of each product next to its embedding, a content hash that
 * tells a rebuild what changed, a GIN index for full-text search, an index on the model name (the model-mix
 * check), HNSW cosine indexes for the standard dimensions where pgvector exists, and on a PostgreSQL without
 * pgvector a dot-product function for the exact scan over real[] embeddings (stored L2-normalized).
 */
const productSearch: Migration = {
  version: 3,
  name: 'product search: full-text documents, HNSW indexes',
  async up(session, { hasVector, queryRole }) {
    const role = quoteIdent(queryRole);
    await session.exec(`
      ALTER TABLE retail.product_description_embeddings
        ADD COLUMN search_document tsvector NOT NULL DEFAULT ''::tsvector,
        ADD COLUMN content_hash text NOT NULL DEFAULT '';
      CREATE INDEX product_embeddings_search_idx ON retail.product_description_embeddings USING gin (search_document);
      CREATE INDEX product_embeddings_model_idx ON retail.product_description_embeddings (model);
    `);
    if (hasVector) {
      // HNSW needs a fixed dimension: one partial expression index per supported dimension.
      for (const dimensions of SEARCH_INDEX_DIMENSIONS) {
        await session.exec(`
          CREATE INDEX product_embeddings_hnsw_${dimensions}_idx ON retail.product_description_embeddings
            USING hnsw ((description_embedding::public.vector(${dimensions})) public.vector_cosine_ops)
            WHERE dimensions = ${dimensions}`);
      }
    } else {
      await session.exec(`
        CREATE SCHEMA zava_search;
        REVOKE ALL ON SCHEMA zava_search FROM PUBLIC;
        GRANT USAGE ON SCHEMA zava_search TO ${role};
        CREATE FUNCTION zava_search.dot(a real[], b real[]) RETURNS double precision
          LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
            SELECT sum(x::double precision * y) FROM unnest(a, b) AS t(x, y)
          $fn$;
        REVOKE ALL ON FUNCTION zava_search.dot(real[], real[]) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION zava_search.dot(real[], real[]) TO ${role};
      `);
    }
  },
};

/** Embedding sizes that get an HNSW index: the local provider (1024), nomic/ollama (768), OpenAI small (1536). */
export const SEARCH_INDEX_DIMENSIONS = [768, 1024, 1536] as const;

/**
 * HNSW build parameters measured on 100,000 synthetic products (BENCHMARKS.md): with pgvector's
 * defaults (m 16, ef_construction 64) recall@10 against exact search stayed at 0.87 even at ef_search 400; with
 * m 32 and ef_construction 128 it is 0.976 at ef_search 400 (the value searchProducts sets) at a 6 ms median.
 */
export const HNSW_BUILD = { m: 32, efConstruction: 128 } as const;

type HnswOperatorClass = 'vector_cosine_ops' | 'vector_ip_ops';

/** The product HNSW index of one dimension (schema-qualified). */
export function hnswIndexName(dimensions: number): string {
  return `retail.product_embeddings_hnsw_${dimensions}_idx`;
}

/**
 * CREATE INDEX for the product HNSW index of one dimension, as the latest migration defines it (inner product:
 * migration 6), for code that rebuilds it outside migrations (search/store.ts builds it after a bulk load).
 */
export function hnswIndexStatement(dimensions: number, operatorClass: HnswOperatorClass = 'vector_ip_ops'): string {
  return `
    CREATE INDEX IF NOT EXISTS product_embeddings_hnsw_${dimensions}_idx ON retail.product_description_embeddings
      USING hnsw ((description_embedding::public.vector(${dimensions})) public.${operatorClass})
      WITH (m = ${HNSW_BUILD.m}, ef_construction = ${HNSW_BUILD.efConstruction})
      WHERE dimensions = ${dimensions}`;
}

/** Drops and rebuilds the product HNSW indexes (one partial index per dimension) with HNSW_BUILD parameters. */
async function rebuildHnswIndexes(session: AdminSession, operatorClass: HnswOperatorClass): Promise<void> {
  for (const dimensions of SEARCH_INDEX_DIMENSIONS) {
    await session.exec(`DROP INDEX IF EXISTS ${hnswIndexName(dimensions)}; ${hnswIndexStatement(dimensions, operatorClass)}`);
  }
}

/** Product search: rebuild the HNSW indexes of migration 3 with the measured build parameters. */
const hnswParameters: Migration = {
  version: 4,
  name: 'product search: HNSW indexes with m 32, ef_construction 128',
  async up(session, { hasVector }) {
    if (hasVector) await rebuildHnswIndexes(session, 'vector_cosine_ops');
  },
};

/**
 * Product search: embeddings stored inline in the heap row. A 1024-dimension embedding (4 KB) was moved to the
 * TOAST table (rows over ~2 KB are), so the exact scan of a search fetched ~2,000 TOAST chunks by index for 608
 * products, more than the distances cost. With toast_tuple_target at its maximum a row goes out of line only
 * when it would not fit a page (about 2,000 dimensions), so larger embeddings still work. Existing rows are
 * rewritten (a fresh value, not the same TOAST pointer) so they move inline too. An index for the search's SKU
 * match (upper(sku) = upper(query)), which was a scan of the products. And the schema of the plan-cached search
 * functions (search/functions.ts installs them; version 5 as first released also created them, and migration 6
 * drops those).
 */
const inlineEmbeddings: Migration = {
  version: 5,
  name: 'product search: embeddings inline, plan-cached search functions',
  async up(session, { hasVector, queryRole }) {
    const type = hasVector ? 'public.vector' : 'real[]';
    const role = quoteIdent(queryRole);
    await session.exec(`
      ALTER TABLE retail.product_description_embeddings SET (toast_tuple_target = 8160);
      UPDATE retail.product_description_embeddings SET description_embedding = description_embedding::text::${type};
      CREATE INDEX products_upper_sku_idx ON retail.products (upper(sku));
      ANALYZE retail.product_description_embeddings, retail.products;
      CREATE SCHEMA IF NOT EXISTS zava_search;
      REVOKE ALL ON SCHEMA zava_search FROM PUBLIC;
      GRANT USAGE ON SCHEMA zava_search TO ${role};
    `);
  },
};

/**
 * Product search by inner product: embeddings are unit vectors, so the cosine similarity is their inner product,
 * which pgvector computes with a third of the arithmetic (`<#>`); the HNSW indexes are rebuilt on vector_ip_ops
 * so the search's ORDER BY still uses them. The search functions of migration 5 (products_v1_*) are dropped:
 * search/functions.ts now installs versioned ones after migrations.
 */
const innerProductSearch: Migration = {
  version: 6,
  name: 'product search: inner-product HNSW indexes; search functions installed outside migrations',
  async up(session, { hasVector }) {
    const type = hasVector ? 'public.vector' : 'real[]';
    // The sizes migration 5 created functions for (a record of that release, not a current setting).
    for (const dimensions of [768, 1024, 1536]) {
      await session.exec(
        `DROP FUNCTION IF EXISTS zava_search.products_v1_${hasVector ? 'vector' : 'real'}_${dimensions}(${type}, text, text, numeric, integer, integer)`,
      );
    }
    if (hasVector) await rebuildHnswIndexes(session, 'vector_ip_ops');
  },
};

/** The temp-file limit of migration 7 when the configuration gives none (the config default). */
export const DEFAULT_TEMP_FILE_LIMIT = '256MB';

/**
 * Sets temp_file_limit for the query role in this database, where the owner may. temp_file_limit is a superuser
 * setting: the query role can neither set it nor raise it (not with SET, not in its startup packet, where a
 * non-superuser's attempt fails the login), so it must come from the role's configuration. ALTER ROLE ... SET for
 * it needs a superuser owner, or (PostgreSQL 15+) an owner granted `SET ON PARAMETER temp_file_limit` (measured on
 * PostgreSQL 15: a plain non-superuser owner with CREATEROLE gets "permission denied"). Where neither holds, a
 * managed PostgreSQL's operator must run the ALTER ROLE (or set temp_file_limit server-wide): see README. Returns
 * whether the limit is now in place; never fails the migration.
 */
export async function applyTempFileLimit(session: AdminSession, queryRole: string, limit: string): Promise<boolean> {
  if (!/^(-1|\d+(kB|MB|GB|TB)?)$/.test(limit)) throw new Error(`invalid temp_file_limit: ${limit}`);
  const action = limit === '-1' ? 'RESET temp_file_limit' : `SET temp_file_limit = ${quoteLiteral(limit)}`;
  // Replicas starting together would update the role's settings row at once ("tuple concurrently updated").
  await session.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
  await session.exec(`
    DO $$ BEGIN
      EXECUTE format('ALTER ROLE %I IN DATABASE %I ${action.replaceAll("'", "''")}', ${quoteLiteral(queryRole)}, current_database());
      PERFORM set_config('zava.temp_file_limit_applied', 'yes', true);
    EXCEPTION WHEN insufficient_privilege THEN
      PERFORM set_config('zava.temp_file_limit_applied', 'no', true);
    END $$`);
  const result = await session.query(`SELECT current_setting('zava.temp_file_limit_applied', true) = 'yes'`);
  return result.rows[0]?.[0] === true;
}

/**
 * Issue 9, the query path:
 * - zava_bound.checked_row_bytes, the row-size check of bounded results (db/bounded.ts): raises SQLSTATE 54000 for
 *   a row larger than the cap, so PostgreSQL never sends it. PARALLEL SAFE and STABLE (not
 *   IMMUTABLE: a constant row must not fail at plan time when no row is produced). No SET search_path: it is
 *   not SECURITY DEFINER (nothing to escalate) and a SET clause costs a settings save and restore on every row.
 * - The RLS context functions PARALLEL RESTRICTED: declared without a marking they were PARALLEL UNSAFE, which
 *   kept every tool query (their policies call them) off parallel plans. Restricted functions run only in the
 *   leader, where the policies' init plans evaluate them once; workers receive the result as a parameter. So
 *   pg_backend_pid() in verified_scope() is still the leader's pid, the one the context was signed for
 *   (test/rls.test.ts runs the RLS matrix under forced parallel plans).
 * - temp_file_limit for the query role, where the owner may set it (applyTempFileLimit).
 */
const queryPath: Migration = {
  version: 7,
  name: 'query path: row-size check, parallel-restricted RLS context, temp-file limit',
  async up(session, { queryRole, tempFileLimit }) {
    const role = quoteIdent(queryRole);
    await session.exec(`
      CREATE SCHEMA zava_bound;
      REVOKE ALL ON SCHEMA zava_bound FROM PUBLIC;
      GRANT USAGE ON SCHEMA zava_bound TO ${role};
      CREATE FUNCTION zava_bound.checked_row_bytes(row_bytes integer, max_bytes integer) RETURNS integer
        LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $fn$
      BEGIN
        IF row_bytes > max_bytes THEN
          RAISE EXCEPTION 'a result row is larger than % bytes', max_bytes
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Select fewer or shorter columns (left(column, 200)), or aggregate.';
        END IF;
        RETURN row_bytes;
      END
      $fn$;
      REVOKE ALL ON FUNCTION zava_bound.checked_row_bytes(integer, integer) FROM PUBLIC;
      GRANT EXECUTE ON FUNCTION zava_bound.checked_row_bytes(integer, integer) TO ${role};

      ALTER FUNCTION zava_ctx.verified_scope() PARALLEL RESTRICTED;
      ALTER FUNCTION zava_ctx.visible_store_ids() PARALLEL RESTRICTED;
      ALTER FUNCTION zava_ctx.is_authenticated() PARALLEL RESTRICTED;
    `);
    await applyTempFileLimit(session, queryRole, tempFileLimit ?? DEFAULT_TEMP_FILE_LIMIT);
  },
};

/**
 * Catalog import (issue 14). Categories get their monthly seasonal multipliers (January first; NULL is flat), as
 * the reference system's product_data.json gives them. Embeddings are keyed by product and model, so a product can
 * keep the vectors its catalog came with (`imported`: OpenAI text-embedding-3-small in the reference file) beside
 * the configured provider's own; every search already filters on the model. Computed embeddings still hold one
 * model per product (a rebuild with another provider replaces them); imported ones stay until the product's text
 * changes. A partial index serves the search's model check, which looks only at computed rows. Stock levels from an
 * imported catalog wait in a private table for stores that do not exist yet (a first run seeds them).
 */
const catalogImport: Migration = {
  version: 8,
  name: 'catalog import: category seasonality, embeddings per product and model, catalog stock levels',
  async up(session) {
    await session.exec(`
      ALTER TABLE retail.categories
        ADD COLUMN seasonal_multipliers real[] CHECK (seasonal_multipliers IS NULL OR cardinality(seasonal_multipliers) = 12);
      ALTER TABLE retail.product_description_embeddings
        ADD COLUMN imported boolean NOT NULL DEFAULT false,
        DROP CONSTRAINT product_description_embeddings_pkey,
        ADD PRIMARY KEY (product_id, model);
      CREATE INDEX product_embeddings_computed_model_idx ON retail.product_description_embeddings (model, dimensions) WHERE NOT imported;
      CREATE TABLE zava_private.catalog_stock_levels (
        product_id   integer PRIMARY KEY REFERENCES retail.products ON DELETE CASCADE,
        stock_level  integer NOT NULL CHECK (stock_level >= 0)
      );
      REVOKE ALL ON zava_private.catalog_stock_levels FROM PUBLIC;
    `);
  },
};


/** The schema that holds the base tables of the masked views (owner-only; the view owner role reads it). */
export const DATA_SCHEMA = 'zava_data';

/** Columns the retail views mask, and for whom they are clear (see migration 9 and the schema tool). */
export const MASKED_COLUMNS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  customers: { email: 'pii', phone: 'pii' },
  stores: { rls_user_id: 'head_office' },
};

/** The role that owns the masking views: it reads the base tables, and Row Level Security applies to it. */
export function viewOwnerRole(queryRole: string): string {
  return `${queryRole}_views`;
}

/** The role head office's statements run as (migration 17), switched to inside each identity transaction. */
export function everyStoreRole(queryRole: string): string {
  return `${queryRole}_every_store`;
}

/**
 * Issue 11, personal data. Customer e-mail and phone, and the store managers' UUIDs (the dev-mode credential), are
 * masked by PostgreSQL for every caller the signed context does not clear:
 * - retail.customers and retail.stores move to the owner-only schema zava_data; in their place are views of the same
 *   names and columns (so `SELECT * FROM retail.customers` keeps working), security barriers owned by a NOLOGIN
 *   role that is neither the table owner nor BYPASSRLS, so the base tables' policies still apply under the views.
 *   The query role loses every privilege on the base tables and has no USAGE on zava_data (the SQL guard refuses
 *   the schema as well): the views are its only way to the rows.
 * - A masked column is computed in the view's select list, so every expression a query builds on it (||, lower(),
 *   left(), LIKE, =, ORDER BY, string_agg, row_to_json, casts, joins, CTEs) sees the masked value only; there is no
 *   view qual a leaky function could be pushed below.
 * - Clear values: e-mail and phone when the signed context carries the pii flag (context v2, db/context.ts); manager
 *   UUIDs when its signed scope is every store (head office). zava_ctx.verified_parts() is the one verification of
 *   the context, shared by verified_scope() (the policies') and the clearing functions; v1 contexts still verify,
 *   without pii.
 * - Owner-side code (seeding, the identity directory, tests' ground truth) keeps reading retail.stores and
 *   retail.customers in clear, with every row: zava_ctx.owner_access() is true for a caller holding the data
 *   schema owner's privileges (a policy for the view owner admits all rows then). It is SECURITY INVOKER, so inside
 *   the embedded sandbox (SECURITY DEFINER as the sandbox role) and for the query role it is false. Writes go to
 *   the zava_data tables.
 * - visible_store_ids() reads zava_data.stores directly (no view in the policies' path).
 */
const personalData: Migration = {
  version: 9,
  name: 'personal data: masking views over customers and stores, pii flag in the signed context',
  async up(session, { queryRole }) {
    const role = quoteIdent(queryRole);
    const sandbox = quoteIdent(`${queryRole}_sandbox`);
    const owner = quoteIdent(viewOwnerRole(queryRole));
    await ensureQueryRoles(session, queryRole);
    await session.exec(`
      CREATE SCHEMA ${DATA_SCHEMA};
      REVOKE ALL ON SCHEMA ${DATA_SCHEMA} FROM PUBLIC;
      ALTER TABLE retail.customers SET SCHEMA ${DATA_SCHEMA};
      ALTER TABLE retail.stores SET SCHEMA ${DATA_SCHEMA};
      REVOKE ALL ON ${DATA_SCHEMA}.customers, ${DATA_SCHEMA}.stores FROM PUBLIC, ${role}, ${sandbox};
      GRANT USAGE ON SCHEMA ${DATA_SCHEMA} TO ${owner};
      GRANT SELECT ON ${DATA_SCHEMA}.customers, ${DATA_SCHEMA}.stores TO ${owner};
      GRANT USAGE ON SCHEMA zava_ctx TO ${owner};

      -- The one verification of the signed context: its parts, or NULL when it is missing, forged, from another
      -- backend or expired. v1: version, pid, expiry, scope, user, signature; v2 adds the pii flag before the
      -- signature.
      CREATE FUNCTION zava_ctx.verified_parts() RETURNS text[]
        LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $fn$
      DECLARE
        raw   text := current_setting('zava.ctx', true);
        parts text[];
        n     integer;
        k     record;
      BEGIN
        IF raw IS NULL OR raw = '' THEN RETURN NULL; END IF;
        parts := string_to_array(raw, '.');
        n := cardinality(parts);
        IF NOT ((n = 6 AND parts[1] = 'v1') OR (n = 7 AND parts[1] = 'v2')) THEN RETURN NULL; END IF;
        SELECT inner_pad, outer_pad INTO k FROM zava_private.context_key WHERE id = 1;
        IF NOT FOUND THEN RETURN NULL; END IF;
        IF encode(sha256(k.outer_pad || sha256(k.inner_pad || convert_to(array_to_string(parts[1:n - 1], '.'), 'UTF8'))), 'hex')
           IS DISTINCT FROM parts[n] THEN
          RETURN NULL;
        END IF;
        IF parts[2] IS DISTINCT FROM pg_backend_pid()::text THEN RETURN NULL; END IF;
        IF parts[3] !~ '^[0-9]{1,15}$'
           OR parts[3]::bigint < floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN
          RETURN NULL;
        END IF;
        IF parts[4] !~ '^(\\*|[0-9]+(-[0-9]+)*)?$' THEN RETURN NULL; END IF;
        IF n = 7 AND parts[6] NOT IN ('pii', '') THEN RETURN NULL; END IF;
        RETURN parts[1:n - 1];
      END
      $fn$;

      CREATE OR REPLACE FUNCTION zava_ctx.verified_scope() RETURNS text
        LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $fn$
        SELECT (zava_ctx.verified_parts())[4]
      $fn$;

      CREATE OR REPLACE FUNCTION zava_ctx.visible_store_ids() RETURNS integer[]
        LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $fn$
        SELECT CASE
                 WHEN scope IS NULL OR scope = '' THEN '{}'::integer[]
                 WHEN scope = '*' THEN ARRAY(SELECT store_id FROM ${DATA_SCHEMA}.stores ORDER BY store_id)
                 ELSE string_to_array(scope, '-')::integer[]
               END
          FROM zava_ctx.verified_scope() AS scope
      $fn$;

      -- Whether the caller holds the privileges of the data schema's owner (owner-side code). SECURITY INVOKER on
      -- purpose; by name, not regclass, which would need USAGE on the schema.
      CREATE FUNCTION zava_ctx.owner_access() RETURNS boolean
        LANGUAGE sql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $fn$
        SELECT coalesce(bool_or(pg_has_role(current_user, n.nspowner, 'USAGE')), false)
          FROM pg_namespace n WHERE n.nspname = '${DATA_SCHEMA}'
      $fn$;

      CREATE FUNCTION zava_ctx.pii_clear() RETURNS boolean
        LANGUAGE sql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $fn$
        SELECT zava_ctx.owner_access() OR coalesce((SELECT p[1] = 'v2' AND p[6] = 'pii' FROM zava_ctx.verified_parts() AS p), false)
      $fn$;

      CREATE FUNCTION zava_ctx.manager_ids_clear() RETURNS boolean
        LANGUAGE sql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $fn$
        SELECT zava_ctx.owner_access() OR coalesce(zava_ctx.verified_scope() = '*', false)
      $fn$;

      -- The masks keep what a manager needs to tell values apart (first letter and domain, last four digits).
      CREATE FUNCTION zava_ctx.mask_email(email text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT CASE WHEN email IS NULL THEN NULL
                    WHEN strpos(email, '@') > 1 THEN left(email, 1) || '***' || substr(email, strpos(email, '@'))
                    ELSE '***' END
      $fn$;
      CREATE FUNCTION zava_ctx.mask_phone(phone text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT CASE WHEN phone IS NULL THEN NULL
                    ELSE '***-***-' || right(regexp_replace(phone, '[^0-9]', '', 'g'), 4) END
      $fn$;
      CREATE FUNCTION zava_ctx.mask_uuid(id uuid) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT CASE WHEN id IS NULL THEN NULL ELSE '********-****-****-****-********' || right(id::text, 4) END
      $fn$;

      REVOKE ALL ON ALL FUNCTIONS IN SCHEMA zava_ctx FROM PUBLIC;
      GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA zava_ctx TO ${role}, ${owner};

      -- Owner-side reads through the views see every row (the store-scope policies admit none without a context).
      CREATE POLICY owner_through_view ON ${DATA_SCHEMA}.customers FOR SELECT TO ${owner} USING ((SELECT zava_ctx.owner_access()));
      CREATE POLICY owner_through_view ON ${DATA_SCHEMA}.stores FOR SELECT TO ${owner} USING ((SELECT zava_ctx.owner_access()));

      -- The subselects make each check an init plan: evaluated once per query, not per row.
      CREATE VIEW retail.customers WITH (security_barrier = true) AS
        SELECT customer_id, first_name, last_name,
               CASE WHEN (SELECT zava_ctx.pii_clear()) THEN email ELSE zava_ctx.mask_email(email) END AS email,
               CASE WHEN (SELECT zava_ctx.pii_clear()) THEN phone ELSE zava_ctx.mask_phone(phone) END AS phone,
               primary_store_id, created_at
          FROM ${DATA_SCHEMA}.customers;
      CREATE VIEW retail.stores WITH (security_barrier = true) AS
        SELECT store_id, store_name,
               CASE WHEN (SELECT zava_ctx.manager_ids_clear()) THEN rls_user_id::text ELSE zava_ctx.mask_uuid(rls_user_id) END AS rls_user_id,
               is_online, region
          FROM ${DATA_SCHEMA}.stores;
      ALTER VIEW retail.customers OWNER TO ${owner};
      ALTER VIEW retail.stores OWNER TO ${owner};
      REVOKE ALL ON retail.customers, retail.stores FROM PUBLIC;
      GRANT SELECT ON retail.customers, retail.stores TO ${role};
    `);
  },
};

/** The audit trail's schema (migration 10): owner-only; the query role has no USAGE on it. */
export const AUDIT_SCHEMA = 'zava_audit';

/**
 * Issue 11, audit trail: one row per tool call, in a schema of its own that the query role cannot reach (no USAGE,
 * no grant; the SQL guard refuses the schema too). Append-only: UPDATE, DELETE and TRUNCATE raise, except the
 * retention prune (db/audit.ts), which deletes old rows only after setting zava.audit_prune for its transaction.
 * An owner can still drop the triggers; this guards against mistakes and the application, not the DBA.
 */
const auditTrail: Migration = {
  version: 10,
  name: 'audit trail: append-only tool call log',
  async up(session) {
    await session.exec(`
      CREATE SCHEMA ${AUDIT_SCHEMA};
      REVOKE ALL ON SCHEMA ${AUDIT_SCHEMA} FROM PUBLIC;
      CREATE TABLE ${AUDIT_SCHEMA}.tool_calls (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at            timestamptz NOT NULL,
        sub           text,
        user_id       text,
        role          text,
        store_scope   text,
        pii           boolean,
        tool          text NOT NULL,
        request_text  text,
        outcome       text NOT NULL CHECK (outcome IN ('ok', 'error', 'refused')),
        row_count     integer,
        truncated     boolean,
        refusal       text,
        error_class   text,
        duration_ms   real NOT NULL,
        request_id    text,
        client_name   text,
        recorded_at   timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX tool_calls_at_idx ON ${AUDIT_SCHEMA}.tool_calls (at);
      CREATE INDEX tool_calls_sub_at_idx ON ${AUDIT_SCHEMA}.tool_calls (sub, at);
      REVOKE ALL ON ${AUDIT_SCHEMA}.tool_calls FROM PUBLIC;

      CREATE FUNCTION ${AUDIT_SCHEMA}.append_only() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
      BEGIN
        IF TG_OP = 'DELETE' AND current_setting('zava.audit_prune', true) = 'on' THEN RETURN OLD; END IF;
        RAISE EXCEPTION '${AUDIT_SCHEMA}.tool_calls is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
      END
      $fn$;
      REVOKE ALL ON FUNCTION ${AUDIT_SCHEMA}.append_only() FROM PUBLIC;
      CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON ${AUDIT_SCHEMA}.tool_calls
        FOR EACH ROW EXECUTE FUNCTION ${AUDIT_SCHEMA}.append_only();
      CREATE TRIGGER no_truncate BEFORE TRUNCATE ON ${AUDIT_SCHEMA}.tool_calls
        FOR EACH STATEMENT EXECUTE FUNCTION ${AUDIT_SCHEMA}.append_only();
    `);
  },
};

/**
 * Token revocation (issue 11), version 11 (9 and 10 belong to the audit and personal-data work). An owner-only
 * schema: the query role has no USAGE on it, so SQL run through the tools can neither read nor write the list.
 * A row revokes one token (jti), or every token of a subject issued before a time (sub + before). Each insert
 * notifies `zava_revocations`, which servers on PostgreSQL listen to; they also re-read the list every few
 * seconds, so a lost notification delays a revocation by that much at most.
 */
const tokenRevocation: Migration = {
  version: 11,
  name: 'identity: token revocation list (zava_auth.revocations)',
  async up(session) {
    await session.exec(`
      CREATE SCHEMA zava_auth;
      REVOKE ALL ON SCHEMA zava_auth FROM PUBLIC;
      CREATE TABLE zava_auth.revocations (
        id          bigserial PRIMARY KEY,
        jti         text,
        sub         text,
        before      timestamptz,
        reason      text,
        created_at  timestamptz NOT NULL DEFAULT now(),
        CHECK (jti IS NOT NULL OR (sub IS NOT NULL AND before IS NOT NULL))
      );
      REVOKE ALL ON zava_auth.revocations FROM PUBLIC;
      CREATE FUNCTION zava_auth.notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          PERFORM pg_notify('zava_revocations', NEW.id::text);
          RETURN NEW;
        END
      $fn$;
      REVOKE ALL ON FUNCTION zava_auth.notify_revocation() FROM PUBLIC;
      CREATE TRIGGER revocation_notify AFTER INSERT ON zava_auth.revocations FOR EACH ROW EXECUTE FUNCTION zava_auth.notify_revocation();
    `);
  },
};

/** Coordinates per cube: cube's CUBE_MAX_DIM (100), a compile-time limit of the extension. */
export const EMBEDDING_CHUNK_DIMENSIONS = 100;
/** Cubes per stored row: 8 × 808 bytes stays inline (toast_tuple_target 8160; cube values cannot be toasted). */
export const EMBEDDING_CHUNKS_PER_ROW = 8;

/**
 * Issue 14, speed without pgvector: the exact scan over real[] spent ~150 ns per coordinate in the executor (unnest,
 * cast, multiply, sum: ~95 ms of PostgreSQL CPU for 608 products at 1,024 dimensions). Stock PostgreSQL has no
 * vector arithmetic in C, but its contrib extension `cube` (shipped with PostgreSQL, trusted since 13, so the
 * database owner may create it) computes a Euclidean distance of up to 100 float8 coordinates in C. Each embedding
 * is kept a second time as cubes of 100 coordinates, eight to a row, with the row's squared norm, so the inner
 * product is (Σ ‖a_k‖² + ‖q‖² − Σ ‖a_k − q_k‖²) / 2: the same value as the real[] dot product to float8 precision
 * (float4 coordinates are exact in float8). A table of its own rather than columns: 1,024 float8 coordinates are
 * more than a page, and cube values cannot be compressed or moved out of line (its storage is plain), so a
 * 1,024-dimension embedding takes two rows (8 + 3 cubes), 1,536 two, 768 one. Triggers keep the rows in step
 * with every write to the embeddings (rebuild, import, any owner UPDATE, DELETE or TRUNCATE). The query role reads them under the same policy as the embeddings. Only on a PostgreSQL without
 * pgvector, and only where cube can be created here (in schema zava_search): elsewhere search keeps the real[] scan
 * (search/functions.ts looks for the table).
 */
const embeddingChunks: Migration = {
  version: 13,
  name: 'product search without pgvector: embeddings as cube chunks for a C-speed exact scan',
  async up(session, { hasVector, queryRole }) {
    if (hasVector) return;
    const role = quoteIdent(queryRole);
    // Not available (a server without contrib) or not allowed (an owner without CREATE on the database): the
    // search keeps the real[] scan. The failed CREATE is rolled back to the block's savepoint, nothing else.
    await session.exec(`
      DO $$ BEGIN
        CREATE EXTENSION IF NOT EXISTS cube WITH SCHEMA zava_search;
      EXCEPTION WHEN undefined_file OR insufficient_privilege OR feature_not_supported OR invalid_parameter_value OR undefined_object THEN
        RAISE NOTICE 'cube not available (%): product search keeps the exact scan over real[]', SQLERRM;
      END $$`);
    // Installed earlier into another schema (by someone else): left alone, and not used.
    const where = await session.query(`SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'cube'`);
    if (where.rows[0]?.[0] !== 'zava_search') return;
    const n = EMBEDDING_CHUNK_DIMENSIONS;
    const perRow = EMBEDDING_CHUNKS_PER_ROW;
    const cubes = Array.from({ length: perRow }, (_, j) => j);
    // Cube j of part p: coordinates (p · perRow + j) · n + 1 … + n; past the end of the embedding the slice is
    // empty and the cube NULL.
    const slice = (j: number) => `embedding[p * ${perRow * n} + ${j * n + 1} : p * ${perRow * n} + ${(j + 1) * n}]`;
    await session.exec(`
      CREATE TABLE zava_search.embedding_chunks (
        product_id  integer NOT NULL,
        model       text NOT NULL,
        dimensions  integer NOT NULL,
        part        smallint NOT NULL,
        norm2       double precision NOT NULL,
        ${cubes.map((j) => `c${j} zava_search.cube${j === 0 ? ' NOT NULL' : ''}`).join(', ')},
        PRIMARY KEY (model, product_id, part)
      ) WITH (toast_tuple_target = 8160);
      ALTER TABLE zava_search.embedding_chunks ENABLE ROW LEVEL SECURITY;
      CREATE POLICY authenticated ON zava_search.embedding_chunks FOR SELECT USING ((SELECT zava_ctx.is_authenticated()));
      REVOKE ALL ON zava_search.embedding_chunks FROM PUBLIC;
      GRANT SELECT ON zava_search.embedding_chunks TO ${role};

      CREATE FUNCTION zava_search.embedding_chunk_rows(embedding real[])
        RETURNS TABLE (part smallint, norm2 double precision, ${cubes.map((j) => `c${j} zava_search.cube`).join(', ')})
        LANGUAGE sql IMMUTABLE STRICT AS $fn$
          SELECT p::smallint,
                 (SELECT sum(x::double precision * x) FROM unnest(embedding[p * ${perRow * n} + 1 : p * ${perRow * n} + ${perRow * n}]) AS x),
                 ${cubes.map((j) => `zava_search.cube(nullif(${slice(j)}, '{}')::double precision[])`).join(', ')}
            FROM generate_series(0, (cardinality(embedding) - 1) / ${perRow * n}) AS p
        $fn$;
      CREATE FUNCTION zava_search.sync_embedding_chunks() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          IF TG_OP = 'UPDATE' THEN
            DELETE FROM zava_search.embedding_chunks WHERE product_id = OLD.product_id AND model = OLD.model;
          END IF;
          INSERT INTO zava_search.embedding_chunks
            SELECT NEW.product_id, NEW.model, NEW.dimensions, c.* FROM zava_search.embedding_chunk_rows(NEW.description_embedding) AS c;
          RETURN NULL;
        END
        $fn$;
      CREATE FUNCTION zava_search.drop_embedding_chunks() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          IF TG_OP = 'TRUNCATE' THEN
            TRUNCATE zava_search.embedding_chunks;
          ELSE
            DELETE FROM zava_search.embedding_chunks c USING gone g WHERE c.product_id = g.product_id AND c.model = g.model;
          END IF;
          RETURN NULL;
        END
        $fn$;
      REVOKE ALL ON FUNCTION zava_search.embedding_chunk_rows(real[]) FROM PUBLIC;
      REVOKE ALL ON FUNCTION zava_search.sync_embedding_chunks() FROM PUBLIC;
      REVOKE ALL ON FUNCTION zava_search.drop_embedding_chunks() FROM PUBLIC;
      -- Triggers, not a foreign key: the seed's --replace TRUNCATEs the embeddings with the rest of the dataset,
      -- which a foreign key from a table outside that list would refuse.
      CREATE TRIGGER embedding_chunks AFTER INSERT OR UPDATE OF description_embedding, dimensions, product_id, model
        ON retail.product_description_embeddings FOR EACH ROW EXECUTE FUNCTION zava_search.sync_embedding_chunks();
      CREATE TRIGGER embedding_chunks_delete AFTER DELETE ON retail.product_description_embeddings
        REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION zava_search.drop_embedding_chunks();
      CREATE TRIGGER embedding_chunks_truncate AFTER TRUNCATE ON retail.product_description_embeddings
        FOR EACH STATEMENT EXECUTE FUNCTION zava_search.drop_embedding_chunks();

      INSERT INTO zava_search.embedding_chunks
        SELECT e.product_id, e.model, e.dimensions, c.*
          FROM retail.product_description_embeddings e CROSS JOIN LATERAL zava_search.embedding_chunk_rows(e.description_embedding) AS c;
      ANALYZE zava_search.embedding_chunks;
    `);
  },
};

/** The typed analytics tools' monthly sales roll-up (src/db/sales-rollup.ts), built from the data already there. */
const salesRollup: Migration = {
  version: 12,
  name: 'monthly sales roll-up (schema zava_rollup) for the typed analytics tools',
  async up(session, { queryRole }) {
    await session.exec(salesRollupDdl(quoteIdent(queryRole)));
    await refreshMonthlySalesRollup(session);
  },
};

/**
 * The roll-up's daily and running grains (src/db/sales-rollup.ts), under the monthly tables' state, triggers and
 * store policy, built from the data already there (the whole roll-up is rebuilt, so it is fresh afterwards).
 */
const salesRollupGrains: Migration = {
  version: 15,
  name: 'daily and running-total sales roll-up grains for the typed analytics tools',
  async up(session, { queryRole }) {
    await session.exec(salesRollupGrainsDdl(quoteIdent(queryRole)));
    // The new roll-up tables are read by tools too, so writes to them bump the result cache's data version (14).
    await session.exec(BUMP_TRIGGERS_SQL);
    await refreshSalesRollup(session);
  },
};

/**
 * Where the tables a tool answer reads live: the retail tables, the data behind the retail views (zava_data), the
 * sales roll-up, and the imported catalog's stock levels. Every base table there gets the bump trigger.
 */
const VERSIONED_TABLES_SQL = `
  SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p')
     AND (n.nspname IN ('retail', 'zava_data', 'zava_rollup') OR (n.nspname = 'zava_private' AND c.relname = 'catalog_stock_levels'))
     AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'bump_data_version')`;

/** Gives every versioned table that lacks them the bump triggers (a later migration's new tables too). */
const BUMP_TRIGGERS_SQL = `
  DO $do$
    DECLARE data_table regclass;
    BEGIN
      FOR data_table IN ${VERSIONED_TABLES_SQL} LOOP
        EXECUTE format('CREATE TRIGGER bump_data_version AFTER INSERT OR UPDATE OR DELETE ON %s
                          FOR EACH STATEMENT EXECUTE FUNCTION zava_cache.bump_data_version()', data_table);
        EXECUTE format('CREATE TRIGGER bump_data_version_truncate AFTER TRUNCATE ON %s
                          FOR EACH STATEMENT EXECUTE FUNCTION zava_cache.bump_data_version()', data_table);
      END LOOP;
    END
  $do$;`;

/**
 * Result cache (issues 12 and 15): the data version every cached answer is keyed under. One row; every statement
 * that writes a retail table bumps it in the same transaction (statement-level triggers), so a seed, an import,
 * an embeddings rebuild or an operator's own UPDATE all invalidate, and the new version becomes visible, on the
 * primary and on each standby, exactly when the data does. The new value is at least the wall clock in
 * milliseconds, so it still rises after a restore brings back an older row. Each bump also notifies
 * `zava_data_version` at commit, so servers learn of it without asking. The query role reads it inside a tool's
 * own read (see db/data-version.ts), wherever that read runs.
 */
const dataVersion: Migration = {
  version: 14,
  name: 'data version for the result cache, bumped by every write to the retail tables',
  async up(session, { queryRole }) {
    const role = quoteIdent(queryRole);
    await session.exec(`
      CREATE SCHEMA IF NOT EXISTS zava_cache;
      REVOKE ALL ON SCHEMA zava_cache FROM PUBLIC;
      CREATE TABLE zava_cache.data_version (
        only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        version   bigint NOT NULL
      );
      INSERT INTO zava_cache.data_version (version) VALUES ((extract(epoch FROM clock_timestamp()) * 1000)::bigint);
      CREATE FUNCTION zava_cache.bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          UPDATE zava_cache.data_version SET version = greatest(version + 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
          -- Delivered at commit (once per transaction) to every server LISTENing on the primary.
          PERFORM pg_notify('zava_data_version', '');
          RETURN NULL;
        END
        $fn$;
      REVOKE ALL ON FUNCTION zava_cache.bump_data_version() FROM PUBLIC;
      GRANT USAGE ON SCHEMA zava_cache TO ${role};
      GRANT SELECT ON zava_cache.data_version TO ${role};
    `);
    await session.exec(BUMP_TRIGGERS_SQL);
  },
};

/**
 * Product search without pgvector ranks the vector part in the server process (src/search/vector-memory.ts), from
 * each model's embeddings held in memory. This version tells such a copy whether it is current: one row, bumped
 * by every statement that writes the embeddings (statement-level triggers, in the writer's transaction), so it
 * changes exactly when the embeddings do, on the primary and on each standby. A search passes the version of its
 * copy and the statement checks it in its own snapshot (embeddings_at raises SQLSTATE ZV001 when it differs):
 * a search never ranks with embeddings other than the ones its snapshot sees. Orders and stock writes leave it
 * alone (unlike the result cache's data version, 14), so they cost no reload.
 */
const embeddingsVersion: Migration = {
  version: 16,
  name: 'product search without pgvector: an embeddings version for the in-process vector ranking',
  async up(session, { hasVector, queryRole }) {
    if (hasVector) return;
    const role = quoteIdent(queryRole);
    await session.exec(`
      CREATE SCHEMA IF NOT EXISTS zava_search;
      CREATE TABLE zava_search.embeddings_version (
        only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        version   bigint NOT NULL
      );
      INSERT INTO zava_search.embeddings_version (version) VALUES ((extract(epoch FROM clock_timestamp()) * 1000)::bigint);
      REVOKE ALL ON zava_search.embeddings_version FROM PUBLIC;
      GRANT SELECT ON zava_search.embeddings_version TO ${role};
      CREATE FUNCTION zava_search.bump_embeddings_version() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          UPDATE zava_search.embeddings_version SET version = greatest(version + 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
          RETURN NULL;
        END
        $fn$;
      REVOKE ALL ON FUNCTION zava_search.bump_embeddings_version() FROM PUBLIC;
      CREATE TRIGGER bump_embeddings_version AFTER INSERT OR UPDATE OR DELETE ON retail.product_description_embeddings
        FOR EACH STATEMENT EXECUTE FUNCTION zava_search.bump_embeddings_version();
      CREATE TRIGGER bump_embeddings_version_truncate AFTER TRUNCATE ON retail.product_description_embeddings
        FOR EACH STATEMENT EXECUTE FUNCTION zava_search.bump_embeddings_version();
      CREATE FUNCTION zava_search.embeddings_at(expected bigint) RETURNS boolean LANGUAGE plpgsql STABLE AS $fn$
        BEGIN
          IF (SELECT version FROM zava_search.embeddings_version) IS DISTINCT FROM expected THEN
            RAISE EXCEPTION 'product embeddings changed since this server loaded them' USING ERRCODE = 'ZV001';
          END IF;
          RETURN true;
        END
        $fn$;
      REVOKE ALL ON FUNCTION zava_search.embeddings_at(bigint) FROM PUBLIC;
      GRANT EXECUTE ON FUNCTION zava_search.embeddings_at(bigint) TO ${role};
    `);
  },
};

/**
 * Head office without a per-row store check (issue 9: top-20 revenue over all order lines at most 1.15× raw pg).
 * The store-scope policy compares every row's store with the visible stores (`store_id = ANY(...)`): for head office,
 * all of them, a comparison per store on every row of a full scan, 20 % of the top-20 query's time. Managers need
 * that exact form, which PostgreSQL can use as an index condition, so it stays as it is, and head office gets a
 * policy of its own:
 * - Head office's statements run as `<query role>_every_store` (the server sets the role inside each identity
 *   transaction, server/pipeline.ts; ROLLBACK undoes it). That role holds exactly the query role's privileges
 *   (mirrorEveryStoreGrants, run after every migration) and has one more permissive policy on the store-scoped
 *   tables, `whole_company`: the signed context says every store. It is one init plan, checked once per statement.
 *   PostgreSQL ORs permissive policies in reverse name order (PostgreSQL 14 and 15 build the list with lcons), so
 *   `whole_company` comes before `store_scope` and its true value settles each row without the comparison;
 *   test/every-store.test.ts checks that order in the plan, so a PostgreSQL that changes it fails a test rather
 *   than quietly losing the speed.
 * - Nothing is granted by the role alone: with any other context its rows are those `store_scope` allows, as for
 *   the query role, and a forged or missing context sees nothing. The query role may switch to it (a manager's
 *   query cannot: the SQL guard refuses SET and set_config, and if it could, it would gain nothing).
 * - The query role is NOINHERIT (ensureQueryRoles), so the new policy does not apply to it and managers' plans are
 *   unchanged. The customers table is read through its masking view as the view owner, so it keeps one policy.
 *   A store-scoped table a later migration adds gets its `whole_company` policy beside its `store_scope` one.
 */
const everyStorePolicy: Migration = {
  version: 17,
  name: 'head office: a role whose store-scoped reads need no per-row store check',
  async up(session, { queryRole }) {
    await ensureQueryRoles(session, queryRole);
    const role = quoteIdent(queryRole);
    await session.exec(`
      CREATE FUNCTION zava_ctx.sees_every_store() RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $fn$
        SELECT coalesce(zava_ctx.verified_scope() = '*', false)
      $fn$;
      REVOKE ALL ON FUNCTION zava_ctx.sees_every_store() FROM PUBLIC;
      GRANT EXECUTE ON FUNCTION zava_ctx.sees_every_store() TO ${role};
      -- Every table with a store-scope policy (the retail tables and the sales roll-ups), but customers.
      DO $$
      DECLARE t regclass;
      BEGIN
        FOR t IN SELECT polrelid::regclass FROM pg_policy
                  WHERE polname = 'store_scope' AND polrelid <> '${DATA_SCHEMA}.customers'::regclass LOOP
          EXECUTE format('CREATE POLICY whole_company ON %s FOR SELECT TO %I USING ((SELECT zava_ctx.sees_every_store()))',
                         t, ${quoteLiteral(everyStoreRole(queryRole))});
        END LOOP;
      END $$;
    `);
  },
};

/**
 * Issue 9, the database part of a tool call: the RLS checks cheaper per statement, same answers. Every policy's init
 * plan called a chain of SQL functions, each SECURITY DEFINER with its own search_path: PostgreSQL never inlines
 * such a function, plans its body again in every statement and saves and restores the setting around each call.
 * Measured per statement on PostgreSQL 15 (EXPLAIN ANALYZE, p10): is_authenticated() 59–88 µs, sees_every_store()
 * 58–76 µs, owner_access() 46–70 µs, against 42 µs for verified_parts() alone.
 * - verified_parts() stays the one SECURITY DEFINER check (the only code that reads the key), unchanged.
 * - The wrappers that only read its answer (verified_scope, is_authenticated, sees_every_store, pii_clear,
 *   manager_ids_clear) become SECURITY INVOKER SQL functions with a standard body (RETURN …), which PostgreSQL
 *   inlines into the policy's init plan: the statement calls verified_parts() directly. A standard body is parsed
 *   once, when it is created, and refers to functions and operators by OID, so a caller's search_path cannot
 *   change what it calls (the reason the SET clause was there). Invoker rights are enough: every role that reads
 *   the tables already holds EXECUTE on verified_parts() and owner_access() (migration 9, mirrored grants).
 * - owner_access() (invoker, as before) and visible_store_ids() (definer: it reads zava_data.stores for head
 *   office) read tables, so they cannot be inlined; in PL/pgSQL their plans are kept for the session instead.
 * - pii_clear() reads the pii flag as the sixth verified part: only a v2 context has one.
 * Result (the same statements before/after, p10 of planning + execution): a one-row products lookup 97 → 80 µs,
 * head office's orders-per-store aggregate 280 → 227 µs, a manager's count of their orders 281 → 228 µs, the
 * stores view with manager UUIDs 234 → 155 µs.
 */
const cheaperContextChecks: Migration = {
  version: 18,
  name: 'RLS context checks inlined into each policy, plans kept for the session',
  async up(session) {
    await session.exec(`
      CREATE OR REPLACE FUNCTION zava_ctx.verified_scope() RETURNS text
        LANGUAGE sql STABLE PARALLEL RESTRICTED
        RETURN (zava_ctx.verified_parts())[4];
      CREATE OR REPLACE FUNCTION zava_ctx.is_authenticated() RETURNS boolean
        LANGUAGE sql STABLE PARALLEL RESTRICTED
        RETURN zava_ctx.verified_parts() IS NOT NULL;
      CREATE OR REPLACE FUNCTION zava_ctx.sees_every_store() RETURNS boolean
        LANGUAGE sql STABLE PARALLEL RESTRICTED
        RETURN coalesce((zava_ctx.verified_parts())[4] = '*', false);
      CREATE OR REPLACE FUNCTION zava_ctx.owner_access() RETURNS boolean
        LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $fn$
      BEGIN
        RETURN coalesce((SELECT bool_or(pg_has_role(current_user, n.nspowner, 'USAGE'))
                           FROM pg_namespace n WHERE n.nspname = '${DATA_SCHEMA}'), false);
      END
      $fn$;
      CREATE OR REPLACE FUNCTION zava_ctx.pii_clear() RETURNS boolean
        LANGUAGE sql STABLE PARALLEL RESTRICTED
        RETURN zava_ctx.owner_access() OR coalesce((zava_ctx.verified_parts())[6] = 'pii', false);
      CREATE OR REPLACE FUNCTION zava_ctx.manager_ids_clear() RETURNS boolean
        LANGUAGE sql STABLE PARALLEL RESTRICTED
        RETURN zava_ctx.owner_access() OR coalesce((zava_ctx.verified_parts())[4] = '*', false);
      CREATE OR REPLACE FUNCTION zava_ctx.visible_store_ids() RETURNS integer[]
        LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp AS $fn$
      DECLARE
        scope text := (zava_ctx.verified_parts())[4];
      BEGIN
        IF scope IS NULL OR scope = '' THEN RETURN '{}'::integer[]; END IF;
        IF scope = '*' THEN RETURN ARRAY(SELECT store_id FROM ${DATA_SCHEMA}.stores ORDER BY store_id); END IF;
        RETURN string_to_array(scope, '-')::integer[];
      END
      $fn$;
    `);
  },
};

/**
 * The head-office role holds exactly the query role's privileges on this database's schemas, tables, views,
 * sequences and functions: granted where the query role has them, revoked where it has not. Run after every
 * migration that ran, so a grant or revoke of a later migration reaches both roles.
 */
async function mirrorEveryStoreGrants(session: AdminSession, queryRole: string): Promise<void> {
  await session.exec(`
    DO $mirror$
    DECLARE
      source oid := (SELECT oid FROM pg_roles WHERE rolname = ${quoteLiteral(queryRole)});
      target oid := (SELECT oid FROM pg_roles WHERE rolname = ${quoteLiteral(everyStoreRole(queryRole))});
      p record;
    BEGIN
      IF source IS NULL OR target IS NULL THEN RETURN; END IF;
      FOR p IN
        WITH held AS (
          SELECT 'SCHEMA' AS kind, format('%I', n.nspname) AS object, a.privilege_type, a.grantee
            FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a
          UNION ALL
          SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, format('%I.%I', n.nspname, c.relname), a.privilege_type, a.grantee
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL aclexplode(c.relacl) a
          UNION ALL
          SELECT 'FUNCTION', format('%I.%I(%s)', n.nspname, f.proname, pg_get_function_identity_arguments(f.oid)), a.privilege_type, a.grantee
            FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace CROSS JOIN LATERAL aclexplode(f.proacl) a
        )
        SELECT kind, object, privilege_type, bool_or(grantee = source) AS wanted, bool_or(grantee = target) AS present
          FROM held WHERE grantee IN (source, target) GROUP BY kind, object, privilege_type
      LOOP
        IF p.wanted AND NOT p.present THEN
          EXECUTE format('GRANT %s ON %s %s TO %I', p.privilege_type, p.kind, p.object, ${quoteLiteral(everyStoreRole(queryRole))});
        ELSIF p.present AND NOT p.wanted THEN
          EXECUTE format('REVOKE %s ON %s %s FROM %I', p.privilege_type, p.kind, p.object, ${quoteLiteral(everyStoreRole(queryRole))});
        END IF;
      END LOOP;
    END
    $mirror$;
  `);
}

export const MIGRATIONS: readonly Migration[] = [
  schema,
  security,
  productSearch,
  hnswParameters,
  inlineEmbeddings,
  innerProductSearch,
  queryPath,
  catalogImport,
  personalData,
  auditTrail,
  tokenRevocation,
  salesRollup,
  embeddingChunks,
  dataVersion,
  salesRollupGrains,
  embeddingsVersion,
  everyStorePolicy,
  cheaperContextChecks,
];

export interface MigrationReport {
  readonly applied: readonly { version: number; name: string }[];
  readonly current: number;
}

export async function migrate(session: AdminSession, context: MigrationContext): Promise<MigrationReport> {
  // The lock comes first: even CREATE ... IF NOT EXISTS and REVOKE fail with "tuple concurrently updated" or a
  // duplicate key when several replicas start at once on one database.
  await session.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
  await session.exec(`
    CREATE SCHEMA IF NOT EXISTS zava_meta;
    CREATE TABLE IF NOT EXISTS zava_meta.schema_migrations (
      version     integer PRIMARY KEY,
      name        text NOT NULL,
      applied_at  timestamptz NOT NULL DEFAULT now()
    );
    REVOKE ALL ON SCHEMA zava_meta FROM PUBLIC;
  `);
  const done = await session.query('SELECT version FROM zava_meta.schema_migrations');
  const appliedBefore = new Set(done.rows.map((row) => Number(row[0])));
  const applied: { version: number; name: string }[] = [];
  for (const migration of MIGRATIONS) {
    if (appliedBefore.has(migration.version)) continue;
    await migration.up(session, context);
    await session.query('INSERT INTO zava_meta.schema_migrations (version, name) VALUES ($1::int, $2)', [
      migration.version,
      migration.name,
    ]);
    applied.push({ version: migration.version, name: migration.name });
  }
  if (applied.length > 0) await mirrorEveryStoreGrants(session, context.queryRole);
  return { applied, current: Math.max(0, ...appliedBefore, ...applied.map((m) => m.version)) };
}

