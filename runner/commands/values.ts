// The parsed command-line flags every command receives (node:util parseArgs' values), in their own file so
// the commands and cli.ts, which dispatches to them, do not import each other.
export type Values = Record<string, string | boolean | string[] | undefined>;
