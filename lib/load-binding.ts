/**
 * Loads the compiled addon through napi-rs's generated `index.js` and, when no
 * binary fits this machine, replaces napi's generic "Cannot find native
 * binding ... remove package-lock.json" with an error that says what is
 * missing and how to get it. napi regenerates `index.js` on every build, so
 * the message lives here, outside it.
 *
 *   const binding = loadBinding(() => require('../index.js'));
 *
 * The thrown error names the platform package it looked for (for example
 * `@dreamnet/reliability-core-linux-x64-musl`), whether this version publishes
 * one, and the one command that builds the addon from source; napi's own
 * per-candidate errors stay in the message and in `error.cause`, so the real
 * cause (a missing file, a wrong ELF class, a too-old glibc) is not hidden.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

const PACKAGE_ROOT = path.resolve(__dirname, '..');

/** The code of the error thrown when no binary loads on this platform. */
export const ERR_NATIVE_BINDING_MISSING = 'ERR_NATIVE_BINDING_MISSING';

/** What napi-rs calls this platform: `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`. */
export function platformTriple(platform: string = process.platform, arch: string = process.arch, musl: boolean = isMusl()): string {
  if (platform === 'linux') return `${platform}-${arch}-${musl ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `${platform}-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function isMusl(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    // No ldd (distroless, some Alpine images): glibc reports its version, musl does not.
    const report = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined;
    return !report?.header?.glibcVersionRuntime;
  }
}

interface PackageJson {
  name: string;
  version: string;
  optionalDependencies?: Record<string, string>;
  napi?: { binaryName?: string; targets?: string[] };
}

/**
 * napi-rs's platform name for a Rust target triple, for the targets this
 * package builds: `x86_64-unknown-linux-musl` -> `linux-x64-musl`,
 * `aarch64-apple-darwin` -> `darwin-arm64`, `x86_64-pc-windows-msvc` -> `win32-x64-msvc`.
 */
export function tripleToPlatform(triple: string): string {
  const [archPart, , sys = '', abi] = triple.split('-');
  const arch = ({ x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' } as Record<string, string>)[archPart] ?? archPart;
  if (triple.includes('apple-darwin')) return `darwin-${arch}`;
  if (sys === 'windows') return `win32-${arch}-${abi ?? 'msvc'}`;
  return `${sys}-${arch}${abi ? `-${abi.split('.')[0]}` : ''}`;
}

function ownPackage(): PackageJson {
  return JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as PackageJson;
}

/** napi's error chain (each candidate's failure, linked through `cause`) as lines. */
function causes(err: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  let e: unknown = (err as { cause?: unknown } | null)?.cause ?? err;
  while (e && !seen.has(e) && out.length < 12) {
    seen.add(e);
    out.push(String((e as Error).message ?? e).split('\n')[0]);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

/**
 * The error for "no binary for this platform", built from what was looked
 * for. Exported for tests and for tools that want the same wording.
 */
export function missingBindingError(cause: unknown, triple: string = platformTriple()): Error & { code: string; platformPackage: string } {
  const pkg = ownPackage();
  const binaryName = pkg.napi?.binaryName ?? 'reliability-core';
  const platformPackage = `${pkg.name}-${triple}`;
  // A published package lists its platform packages in optionalDependencies
  // (`napi prepublish` writes them from napi.targets); a checkout has only napi.targets.
  const published =
    Object.prototype.hasOwnProperty.call(pkg.optionalDependencies ?? {}, platformPackage) ||
    (pkg.napi?.targets ?? []).some((t) => tripleToPlatform(t) === triple);
  const file = `${binaryName}.${triple}.node`;
  const lines = [
    `${pkg.name}@${pkg.version}: no native binary loads on ${triple} (Node ${process.versions.node}).`,
    published
      ? `It looked for the platform package ${platformPackage}@${pkg.version}, which is not installed: ` +
        `it is an optional dependency, so it is missing when installs omit optional dependencies ` +
        `(--omit=optional, --no-optional) or when node_modules was copied from another platform. ` +
        `Install it with: npm install ${platformPackage}@${pkg.version}`
      : `It looked for the platform package ${platformPackage}, and none is published for ${triple}.`,
    `To build it from source (needs Rust and Cargo): in a clone of the repository run ` +
      `\`npm install && npm run build:native\`, then copy ${file} into ${PACKAGE_ROOT}` +
      ` (or point NAPI_RS_NATIVE_LIBRARY_PATH at it).`,
    'What failed:',
    ...causes(cause).map((c) => `  - ${c}`),
  ];
  const error = new Error(lines.join('\n'), { cause }) as Error & { code: string; platformPackage: string };
  error.code = ERR_NATIVE_BINDING_MISSING;
  error.platformPackage = platformPackage;
  return error;
}

/**
 * Runs napi's loader; turns its "Cannot find native binding" into
 * {@link missingBindingError}. Any other error (a binding that loads and then
 * throws) passes through unchanged.
 */
export function loadBinding<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    const message = String((err as Error | null)?.message ?? err);
    if (/Cannot find native binding|Failed to load native binding/.test(message)) throw missingBindingError(err);
    throw err;
  }
}
