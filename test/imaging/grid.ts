// Tiny hand-drawn masks for the imaging tests: rows of '#' (1) and '.' (0), or digits for labels.
export function grid(rows: string[]): { data: Uint8Array; width: number; height: number } {
  const height = rows.length;
  const width = rows[0]?.length ?? 0;
  const data = new Uint8Array(width * height);
  rows.forEach((row, y) => {
    if (row.length !== width) throw new Error(`row ${y} has ${row.length} columns, expected ${width}`);
    for (let x = 0; x < width; x++) {
      const c = row[x]!;
      data[y * width + x] = c === '#' ? 1 : c === '.' ? 0 : Number(c);
    }
  });
  return { data, width, height };
}

/** The inverse of grid(): values rendered as digits ('.' for 0). */
export function render(data: ArrayLike<number>, width: number): string[] {
  const rows: string[] = [];
  for (let y = 0; y * width < data.length; y++) {
    let row = '';
    for (let x = 0; x < width; x++) {
      const v = data[y * width + x]!;
      row += v === 0 ? '.' : String(v);
    }
    rows.push(row);
  }
  return rows;
}
