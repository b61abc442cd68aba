/**
 * What `npm pack` would publish (dry run, no scripts, no network): the
 * license, every file the README links to, no install-time scripts, the AWS
 * SDK as optional peers (the library never loads it), and a `require` path.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AWS_SDK_PACKAGES, loadAwsCommand } from '../../src/cli/aws-sdk.js';
import { ROOT } from '../cli/cli-support.js';

interface PackedFile {
  path: string;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  exports: Record<string, Record<string, string> | string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

function packedFiles(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return ((JSON.parse(out) as { files: PackedFile[] }[])[0]!.files).map((f) => f.path);
}

describe('the published package', () => {
  const files = packedFiles();

  it('carries the license and every file the README links to', () => {
    expect(files).toContain('LICENSE');
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)#\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
    expect(links.length).toBeGreaterThan(3);
    for (const link of links) expect(files, link).toContain(link);
  });

  it('has no install-time scripts (npm warns about them on install) and builds before packing', () => {
    for (const name of ['preinstall', 'install', 'postinstall', 'prepare']) expect(pkg.scripts[name], name).toBeUndefined();
    expect(pkg.scripts['prepack']).toBe('npm run build');
    expect(files).toContain('build/rcf.wasm');
  });

  it('keeps test and demo tooling out', () => {
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('dist/test/') || f.startsWith('dist/bench/'))).toEqual([]);
  });

  it('makes the AWS SDK an optional peer, installed for development only', () => {
    for (const name of AWS_SDK_PACKAGES) {
      expect(pkg.dependencies[name], name).toBeUndefined();
      expect(pkg.peerDependencies[name], name).toBeDefined();
      expect(pkg.peerDependenciesMeta[name]?.optional, name).toBe(true);
      expect(pkg.devDependencies[name], name).toBe(pkg.peerDependencies[name]);
    }
  });

  it('resolves for require() as well as import', () => {
    const root = pkg.exports['.'] as Record<string, string>;
    expect(root['import']).toBe('./dist/src/index.js');
    expect(root['default']).toBe('./dist/src/index.js');
  });
});

describe('loadAwsCommand', () => {
  it('turns a missing SDK package into one line saying what to install', async () => {
    const missing = Object.assign(new Error("Cannot find package '@aws-sdk/client-kinesis' imported from /x/dist/src/aws/clients.js"), { code: 'ERR_MODULE_NOT_FOUND' });
    const r = await loadAwsCommand('run', () => Promise.reject(missing));
    expect(r).toEqual({
      missing:
        'rcf-stream run: needs the AWS SDK, which is optional for library use and not installed here (@aws-sdk/client-kinesis is missing). ' +
        `Install it beside rcf-stream: npm install ${AWS_SDK_PACKAGES.join(' ')}`,
    });
  });

  it('passes the module through, and other failures on', async () => {
    expect(await loadAwsCommand('run', () => Promise.resolve(42))).toEqual({ module: 42 });
    const other = Object.assign(new Error("Cannot find module '/x/dist/src/service/service.js'"), { code: 'ERR_MODULE_NOT_FOUND' });
    await expect(loadAwsCommand('run', () => Promise.reject(other))).rejects.toBe(other);
  });
});
