// Small CSV files with a header line (classes.csv, submissions, solutions), read through csv-parse: quotes,
// "" inside quotes, a byte-order mark and CRLF handled by the library; blank lines skipped; every problem a
// StageError naming file:line.
import { parse, CsvError } from 'csv-parse/sync';
import { StageError } from '../stage-error.js';

export interface CsvRow {
  /** 1-based line number in the file, for error messages. */
  line: number;
  fields: Record<string, string>;
}

/** The rows of `text` as header name -> trimmed value; the `required` columns must all be in the header. */
export function parseCsv(text: string, file: string, required: readonly string[]): CsvRow[] {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, { info: true, bom: true, trim: true, skip_empty_lines: true, relax_column_count: true }) as unknown as typeof records;
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    const line = (error as CsvError & { lines?: number }).lines;
    throw new StageError(`${file}${line ? `:${line}` : ''}: ${error.message}`);
  }
  const [head, ...body] = records;
  if (!head) throw new StageError(`${file}: empty file; expected a header line ${required.join(',')}`);
  const header = head.record;
  for (const name of required) {
    if (!header.includes(name)) throw new StageError(`${file}:${head.info.lines}: the header has no column "${name}" (found: ${header.join(', ')})`);
  }
  return body.map(({ record, info }) => {
    if (record.length !== header.length) throw new StageError(`${file}:${info.lines}: ${record.length} fields, the header has ${header.length}`);
    return { line: info.lines, fields: Object.fromEntries(header.map((name, k) => [name, record[k]!])) };
  });
}
