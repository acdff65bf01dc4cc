// What the filter bar shows for a page's filter: the client's refusal (a
// parenthesis that does not balance) or the server's "invalid" error, placed
// back into the user's text, or said to be in the scope when it is not there.
import { ApiError } from '../api/client';
import { userErrorIndex, type Combined, type FilterError } from './query';

/** The error to show for combined, from the first of errors that is the
 * server refusing the filter. */
export function filterError(combined: Combined, ...errors: (Error | undefined)[]): FilterError | undefined {
  if (combined.error) return combined.error;
  for (const err of errors) {
    if (!(err instanceof ApiError) || err.code !== 'invalid') continue;
    const column = err.column;
    if (column === undefined) return { message: err.message };
    const index = userErrorIndex(combined, column);
    return { message: index === undefined ? `in the scope: ${err.message}` : err.message, index };
  }
  return undefined;
}

/** Whether err is about the filter, so that the filter bar shows it and the
 * region that got it need not. */
export function isFilterError(err: Error | undefined): boolean {
  return err instanceof ApiError && err.column !== undefined;
}
