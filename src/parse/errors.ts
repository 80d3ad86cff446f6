// The one error the parsers throw: input they cannot read. Anything else out of a parser is a bug.
export class ParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParseError';
  }
}
