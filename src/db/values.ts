// One conversion of PostgreSQL text values to JSON-friendly JavaScript, used by both backends so a query
// answers the same on PGlite and on a PostgreSQL server.

type Parser = (text: string) => unknown;

const MAX_EXACT_DIGITS = 15;

/** numeric and bigint as numbers when a double holds them exactly enough, otherwise as their text. */
function parseExactNumber(text: string): unknown {
  const digits = text.replace(/^[-+]/, '').replace('.', '').replace(/^0+/, '');
  if (!/^\d*$/.test(digits) || digits.length > MAX_EXACT_DIGITS) return text;
  const value = Number(text);
  return Number.isFinite(value) ? value : text;
}

const asText: Parser = (text) => text;

/** Type OID → parser. Dates and times stay in PostgreSQL's own text form: exact, compact, time-zone explicit. */
export const VALUE_PARSERS: Readonly<Record<number, Parser>> = {
  20: parseExactNumber, // int8
  1700: parseExactNumber, // numeric
  1082: asText, // date
  1083: asText, // time
  1114: asText, // timestamp
  1184: asText, // timestamptz
  1186: asText, // interval
  1266: asText, // timetz
};
