/**
 * Error kinds, in one place: the binding's error `code`s (written once, in
 * `core::error::ErrorKind::code`) mapped to what the package's routers
 * answer, and the helpers the TS layer uses to throw errors of those kinds.
 * Routers decide on `code` and class, never on message text.
 *
 *   import { httpStatusOf, notFound } from './errors';
 *   throw notFound(`Rollout not found: ${name}`); // code ERR_NOT_FOUND
 *   res.status(httpStatusOf(err)); // 404
 */
// `Binding` names the binding's types in the emitted .d.ts (why: lib/native.ts).
import { native, type Binding } from './native';

/** The binding's error codes (`ERR_NOT_FOUND`, `ERR_LIMIT_REACHED`, ...). */
export const ERROR_CODES: Readonly<Binding.ErrorCodes> = Object.freeze(native.errorCodes());

/** How a router answers an error. */
export type ErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'internal';

/** Codes the TS layer adds for states the core does not know about. */
export const NO_ROLLOUTS = 'ERR_NO_ROLLOUTS';

/** An Error with a `code`, as the binding throws them. */
export function codedError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

/** An error for a name nothing is registered under: code `ERR_NOT_FOUND`, as the binding's. */
export function notFound(message: string): Error & { code: string } {
  return codedError(ERROR_CODES.notFound, message);
}

/**
 * The kind of `e`: argument errors (TypeError, RangeError, or the caller's
 * own bad-request class) are `bad-request`; otherwise the `code` decides.
 *
 *   errorKind(Object.assign(new Error('x'), { code: 'ERR_NOT_FOUND' })); // 'not-found'
 *   errorKind(new Error('file not found')); // 'internal': the message is never read
 */
export function errorKind(e: unknown): ErrorKind {
  if (e instanceof TypeError || e instanceof RangeError) return 'bad-request';
  const code = (e as { code?: unknown } | null)?.code;
  if (code === ERROR_CODES.notFound) return 'not-found';
  if (code === ERROR_CODES.invalidState || code === NO_ROLLOUTS) return 'conflict';
  if (code === ERROR_CODES.invalidType || code === ERROR_CODES.outOfRange) return 'bad-request';
  return 'internal';
}

/** The HTTP status for an error kind. */
export const HTTP_STATUS: Readonly<Record<ErrorKind, number>> = Object.freeze({ 'bad-request': 400, 'not-found': 404, conflict: 409, internal: 500 });
