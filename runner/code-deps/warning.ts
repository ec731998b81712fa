// What the import closure could not follow, with the file and line to look at.

export interface CodeWarning {
  file: string;
  line: number;
  message: string;
}

export function formatWarning(warning: CodeWarning): string {
  return `${warning.file}:${warning.line}: ${warning.message}`;
}
