// The one kind of error a stage program reports as the user's mistake (program.ts prints it and exits 1).

/** A mistake of the user's (bad input, bad flag): printed as one clear line, exit code 1, no stack trace. */
export class StageError extends Error {
  override readonly name = 'StageError';
}
