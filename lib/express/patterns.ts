/**
 * Path patterns as the package's options take them: `/a/*` (prefix),
 * `/a/` (the path and everything under it), `/a/:id` (segments, with
 * `:agentId` read out), or an exact path.
 *
 *   compilePattern('/api/agents/:agentId').agent('/api/agents/a-7/tasks') // 'a-7'
 */

export interface Matcher {
  test(path: string): boolean;
  agent?(path: string): string | undefined;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `/a/*` or `/a/` prefix, `/a/:id` segment pattern, or an exact path.
 *
 *   compilePattern('/api/agents/:agentId');
 */
export function compilePattern(p: string): Matcher {
  if (typeof p !== 'string' || !p.startsWith('/')) throw new TypeError(`a path pattern must be a string starting with '/', got ${JSON.stringify(p)}`);
  if (p.endsWith('*')) {
    const prefix = p.slice(0, -1);
    return { test: (path) => path.startsWith(prefix) };
  }
  if (p.includes('/:')) {
    const names: string[] = [];
    const re = new RegExp(
      '^' +
        p
          .split('/')
          .map((seg) => {
            if (seg.startsWith(':')) {
              names.push(seg.slice(1));
              return '([^/]+)';
            }
            return escape(seg);
          })
          .join('/') +
        '(?:/.*)?$',
    );
    const idx = names.indexOf('agentId');
    return {
      test: (path) => re.test(path),
      agent: (path) => {
        if (idx < 0) return undefined;
        const m = re.exec(path);
        if (!m) return undefined;
        try {
          return decodeURIComponent(m[idx + 1]);
        } catch {
          return m[idx + 1];
        }
      },
    };
  }
  const base = p.endsWith('/') && p.length > 1 ? p.slice(0, -1) : p;
  const under = base + '/';
  return { test: (path) => path === base || path.startsWith(under) };
}

/**
 * `compilePattern(p).test`, applied to a raw URL (query string included)
 * rather than a path: no `indexOf('?')` and no slice per request for
 * prefix and exact patterns, which is what the stack's rollouts match on
 * every request.
 *
 *   compileUrlTest('/api/search/*')('/api/search/q'); // true
 */
export function compileUrlTest(p: string): (url: string) => boolean {
  const m = compilePattern(p);
  if (p.includes('?') || p.includes('#') || p.includes('/:')) {
    return (url) => {
      const q = url.indexOf('?');
      return m.test(q < 0 ? url : url.slice(0, q));
    };
  }
  if (p.endsWith('*')) {
    const prefix = p.slice(0, -1);
    return (url) => url.startsWith(prefix);
  }
  const base = p.endsWith('/') && p.length > 1 ? p.slice(0, -1) : p;
  const n = base.length;
  return (url) => {
    if (!url.startsWith(base)) return false;
    if (url.length === n) return true;
    const c = url.charCodeAt(n);
    return c === 47 /* / */ || c === 63 /* ? */;
  };
}
