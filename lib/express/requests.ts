/**
 * Request checks every package router applies before its handlers: a path
 * whose percent-encoding is malformed gets 400 (never a 5xx, never the
 * app's error handler), and a state-changing request with a body that is
 * not JSON gets 415 (a form body used to be accepted with its fields
 * silently dropped).
 *
 *   router.use(rejectMalformedPath);
 *   router.post('/safe-mode', requireJsonBody, express.json(), handler);
 */

type Req = any;
type Res = any;
type Next = (err?: unknown) => void;

/** 400 when the path (as the router sees it) does not percent-decode. */
export function rejectMalformedPath(req: Req, res: Res, next: Next): void {
  const url = String(req.originalUrl ?? req.url ?? '');
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path.includes('%')) {
    try {
      decodeURIComponent(path);
    } catch {
      res.status(400).json({ error: 'Bad Request', message: 'the path has a malformed percent-encoding' });
      return;
    }
  }
  next();
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** True when a request carries a body (a length above 0, or chunked). */
function hasBody(req: Req): boolean {
  const te = req.headers?.['transfer-encoding'];
  const len = req.headers?.['content-length'];
  return te !== undefined || (len !== undefined && len !== '0');
}

/** 415 for a body that is not `application/json` (or `+json`); no body is fine. */
export function requireJsonBody(req: Req, res: Res, next: Next): void {
  if (hasBody(req) && !JSON_TYPE.test(String(req.headers?.['content-type'] ?? ''))) {
    res.status(415).json({ error: 'Unsupported Media Type', message: 'the body must be JSON (Content-Type: application/json)' });
    return;
  }
  next();
}

/**
 * The error handler a package router ends with: malformed JSON 400,
 * oversize 413, a parameter Express could not decode 400; anything else goes on.
 */
export function requestErrors(err: any, _req: Req, res: Res, next: Next): void {
  if (err?.type === 'entity.parse.failed') return void res.status(400).json({ error: 'Bad Request', message: 'the body is not valid JSON' });
  if (err?.type === 'entity.too.large') return void res.status(413).json({ error: 'Payload Too Large', message: 'the body is larger than 4 kB' });
  if (err instanceof URIError || (err?.status === 400 && /decode/i.test(String(err?.message)))) {
    return void res.status(400).json({ error: 'Bad Request', message: 'the path has a malformed percent-encoding' });
  }
  next(err);
}
