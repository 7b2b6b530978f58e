import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import type { ConfigIssue } from '../../src/common/schema.js';
import { checkConfig } from '../../src/daemon/config.js';
import { parseConfigText, readConfigFile } from '../../src/daemon/config-file.js';
import { defaultConfig } from '../../src/daemon/default-config.js';
import { secretPaths, worldReadableWarning } from '../../src/daemon/secrets.js';
import { configWith, ROOT, slowBackend, tempDir } from './harness.js';

const { dir, cleanup } = tempDir('aimm-config-');
after(cleanup);

async function issuesOf(conf: unknown): Promise<ConfigIssue[]> {
  return (await checkConfig(conf, { baseDir: dir })).issues;
}

function has(issues: ConfigIssue[], path: string, rule: string): boolean {
  return issues.some((i) => i.path === path && i.rule === rule);
}

function describeIssues(issues: ConfigIssue[]): string {
  return issues.map((i) => `${i.path} ${i.rule}: ${i.message}`).join('\n');
}

describe('config validation', () => {
  test('a config with the test backend and the HTTP control is valid; defaults applied', async () => {
    const check = await checkConfig(
      { backend: slowBackend(), control: configWith({}).control },
      { baseDir: dir },
    );
    assert.deepEqual(check.issues, []);
    assert.equal(check.config?.name, 'aimm-store');
    assert.equal(check.config?.log.level, 'info');
    assert.equal(check.config?.shutdown_timeout, 20);
    assert.equal(check.config?.hat, null);
    assert.equal(check.controls.length, 1);
    assert.equal(check.backend?.specifier, slowBackend().module);
  });

  test('the top level: required parts, unknown keys, wrong types', async () => {
    const issues = await issuesOf({ name: '', colour: 'red', log: { level: 'loud' } });
    assert.ok(has(issues, '$.backend', 'required'), describeIssues(issues));
    assert.ok(has(issues, '$.control', 'required'));
    assert.ok(has(issues, '$.colour', 'additionalProperties'));
    assert.ok(has(issues, '$.name', 'minLength'));
    assert.ok(has(issues, '$.log.level', 'enum'));
    assert.ok(has(await issuesOf([1, 2]), '$', 'type'));
    assert.ok(has(await issuesOf(null), '$', 'type'));
  });

  test('the backend: module missing, unloadable, or its own schema failing', async () => {
    const noModule = await issuesOf(configWith({ path: 'x' }));
    assert.ok(has(noModule, '$.backend.module', 'required'), describeIssues(noModule));

    const missing = await issuesOf(configWith({ module: './no-such-backend.js' }));
    assert.ok(has(missing, '$.backend.module', 'module'), describeIssues(missing));
    assert.match(missing[0]?.message ?? '', /no-such-backend/);

    const noCreate = await issuesOf(
      configWith({ module: join(ROOT, 'dist/src/daemon/notify.js') }),
    );
    assert.ok(has(noCreate, '$.backend.module', 'module'), describeIssues(noCreate));
    assert.match(noCreate[0]?.message ?? '', /create/);

    const own = await issuesOf(configWith(slowBackend({ write_delay_ms: 'slow', colour: 1 })));
    assert.ok(has(own, '$.backend.write_delay_ms', 'type'), describeIssues(own));
    assert.ok(has(own, '$.backend.colour', 'additionalProperties'), describeIssues(own));
  });

  test('controls: module unloadable, own schema, loopback rule, duplicate listeners', async () => {
    const http = (server: unknown, extra: Record<string, unknown> = {}) => ({
      module: 'aimm-store/controls/http',
      server,
      ...extra,
    });
    const issues = await issuesOf({
      backend: slowBackend(),
      control: [
        { module: './nope.js' },
        http({ host: '127.0.0.1', port: 70000 }),
        http({ host: '0.0.0.0', port: 1 }),
        http({ host: '0.0.0.0', port: 2 }, { users: [], allow_plaintext: true }),
        http({ host: '127.0.0.1', port: 3 }),
        http({ host: '127.0.0.1', port: 3 }),
        {},
        http({ host: '127.0.0.1', port: 4 }, { models: 'yes' }),
      ],
    });
    assert.ok(has(issues, '$.control[0].module', 'module'), describeIssues(issues));
    assert.ok(has(issues, '$.control[1].server.port', 'maximum'));
    assert.ok(has(issues, '$.control[2].server.host', 'loopback'));
    assert.ok(!issues.some((i) => i.path.startsWith('$.control[3]')));
    assert.ok(!issues.some((i) => i.path.startsWith('$.control[4]')));
    assert.ok(has(issues, '$.control[5].server', 'unique'));
    assert.ok(has(issues, '$.control[6].module', 'required'));
    assert.ok(has(issues, '$.control[7].models', 'type'));
  });

  test('a third-party control: its confSchema is applied, or its fault is named', async () => {
    const control = (name: string, confSchema: string) => {
      writeFileSync(
        join(dir, `${name}.mjs`),
        `export const confSchema = ${confSchema};\nexport function create() { throw new Error('not here'); }\n`,
      );
      return `./${name}.mjs`;
    };
    const schema = JSON.stringify({
      type: 'object',
      required: ['module', 'depth'],
      properties: { depth: { type: 'integer' } },
    });
    const issues = await issuesOf({
      backend: slowBackend(),
      control: [
        { module: control('schema-object', schema), depth: 3 },
        { module: control('schema-object-again', schema), depth: 'deep' },
        { module: control('unknown-id', "'aimm-store://controls/nowhere.yaml#'") },
        {
          module: control('broken', "{ type: 'object', properties: { a: { type: 'nonsense' } } }"),
        },
        { module: control('number', '7') },
        { module: control('builtin-id', "'aimm-store://controls/http.yaml#'") },
      ],
    });
    const text = describeIssues(issues);
    assert.ok(!issues.some((i) => i.path.startsWith('$.control[0]')), text);
    assert.ok(has(issues, '$.control[1].depth', 'type'), text);
    const moduleIssue = (i: number) =>
      issues.find((x) => x.path === `$.control[${i}].module` && x.rule === 'module')?.message ?? '';
    assert.match(moduleIssue(2), /unknown-id\.mjs' names its config schema .* not registered/);
    assert.match(moduleIssue(3), /broken\.mjs' exports an invalid 'confSchema'/);
    assert.match(moduleIssue(4), /neither a schema id nor a schema object/);
    assert.ok(has(issues, '$.control[5].server', 'required'), text);
  });

  test('hat: address shapes, one token source, required by a backend that subscribes', async () => {
    const ok = await checkConfig(
      configWith(slowBackend({ hat_required: true }), {
        hat: {
          eventer_server: [
            { host: 'a', port: 1 },
            { host: 'b', port: 2 },
          ],
        },
      }),
      { baseDir: dir },
    );
    assert.deepEqual(ok.issues, []);

    const required = await issuesOf(configWith(slowBackend({ hat_required: true })));
    assert.ok(has(required, '$.hat', 'required'), describeIssues(required));

    const bad = await issuesOf(
      configWith(slowBackend(), { hat: { eventer_server: { host: 'a', port: 'x' }, ping: 1 } }),
    );
    assert.ok(has(bad, '$.hat.ping', 'additionalProperties'), describeIssues(bad));
    // The address alternative's own failure, not one line per oneOf alternative.
    assert.ok(has(bad, '$.hat.eventer_server.port', 'type'), describeIssues(bad));
    assert.ok(!bad.some((i) => i.rule === 'oneOf'), describeIssues(bad));

    const both = await issuesOf(
      configWith(slowBackend(), {
        hat: {
          eventer_server: { host: 'a', port: 1 },
          client_token: 't',
          client_token_file: '/x',
        },
      }),
    );
    assert.ok(has(both, '$.hat.client_token_file', 'exclusive'), describeIssues(both));

    const unreadable = await issuesOf(
      configWith(slowBackend(), {
        hat: { eventer_server: { host: 'a', port: 1 }, client_token_file: join(dir, 'none') },
      }),
    );
    assert.ok(has(unreadable, '$.hat.client_token_file', 'file'), describeIssues(unreadable));
    const lenient = await checkConfig(
      configWith(slowBackend(), {
        hat: { eventer_server: { host: 'a', port: 1 }, client_token_file: join(dir, 'none') },
      }),
      { baseDir: dir, files: 'warning' },
    );
    assert.deepEqual(lenient.issues, []);
    assert.ok(has(lenient.warnings, '$.hat.client_token_file', 'file'));
  });

  test('hat.monitor_component: AIMM’s form, the alternative to eventer_server', async () => {
    const monitor = { host: '127.0.0.1', port: 23010, group: 'aimm', event_server_group: 'event' };
    const ok = await checkConfig(
      configWith(slowBackend({ hat_required: true }), {
        hat: { monitor_component: monitor, client_name: 'aimm/x', ping_delay: 5 },
      }),
      { baseDir: dir },
    );
    assert.deepEqual(ok.issues, []);
    assert.deepEqual(ok.config?.hat?.monitor_component, monitor);

    const noPort = await issuesOf(
      configWith(slowBackend(), {
        hat: { monitor_component: { host: 'm', group: 'aimm', event_server_group: 'event' } },
      }),
    );
    assert.deepEqual(noPort, [], 'the port defaults to 23010');

    const both = await issuesOf(
      configWith(slowBackend(), {
        hat: { eventer_server: { host: 'a', port: 1 }, monitor_component: monitor },
      }),
    );
    assert.ok(has(both, '$.hat.monitor_component', 'exclusive'), describeIssues(both));
    assert.match(both[0]?.message ?? '', /either eventer_server .* or monitor_component/);

    const neither = await issuesOf(configWith(slowBackend(), { hat: { client_name: 'x' } }));
    assert.ok(has(neither, '$.hat', 'required'), describeIssues(neither));
    assert.match(neither[0]?.message ?? '', /eventer_server .* or monitor_component/);

    const incomplete = await issuesOf(
      configWith(slowBackend(), {
        hat: { monitor_component: { host: 'm', port: 0, group: '', colour: 1 } },
      }),
    );
    const text = describeIssues(incomplete);
    assert.ok(has(incomplete, '$.hat.monitor_component.event_server_group', 'required'), text);
    assert.ok(has(incomplete, '$.hat.monitor_component.port', 'minimum'), text);
    assert.ok(has(incomplete, '$.hat.monitor_component.group', 'minLength'), text);
    assert.ok(has(incomplete, '$.hat.monitor_component.colour', 'additionalProperties'), text);
  });
});

describe('config files', () => {
  test('YAML and JSON are read; syntax errors and missing files become issues', () => {
    const yamlFile = join(dir, 'a.yaml');
    writeFileSync(yamlFile, 'name: x\nbackend:\n  module: m\n');
    const y = readConfigFile(yamlFile);
    assert.ok(y.ok);
    assert.deepEqual(y.value, { name: 'x', backend: { module: 'm' } });

    const jsonFile = join(dir, 'a.json');
    writeFileSync(jsonFile, '{"name": "x",}');
    const j = readConfigFile(jsonFile);
    assert.ok(!j.ok && j.issues[0]?.rule === 'syntax' && /invalid JSON/.test(j.issues[0].message));

    const badYaml = parseConfigText('name: [unclosed\n', 'yaml');
    assert.ok(!badYaml.ok && badYaml.issues[0]?.rule === 'syntax');
    const dupKeys = parseConfigText('name: a\nname: b\n', 'yaml');
    assert.ok(!dupKeys.ok, 'duplicate keys are an error');

    const missing = readConfigFile(join(dir, 'missing.yaml'));
    assert.ok(!missing.ok && missing.issues[0]?.rule === 'file');
    assert.match(missing.issues[0]?.message ?? '', /no such file/);
  });

  test('config/default.yaml is the embedded default written out', () => {
    const file = parseYaml(readFileSync(join(ROOT, 'config', 'default.yaml'), 'utf8'));
    assert.deepEqual(file, defaultConfig());
  });
});

describe('secrets in the config', () => {
  const conf = {
    control: [
      {
        users: [
          { username: 'admin', password: 'abc' },
          { username: 'u', password: '' },
        ],
      },
    ],
    hat: { eventer_server: { host: 'h', port: 1 }, client_token: 'tok' },
  };

  test('secret paths are found', () => {
    assert.deepEqual(secretPaths(conf), ['$.control[0].users[0].password', '$.hat.client_token']);
    assert.deepEqual(secretPaths(defaultConfig()), []);
  });

  test('a world-readable file with secrets gets a warning; a private one does not', () => {
    const file = join(dir, 'secret.yaml');
    writeFileSync(file, 'x: 1\n');
    chmodSync(file, 0o644);
    const warning = worldReadableWarning(file, conf);
    assert.ok(warning !== null);
    assert.match(warning, /world-readable \(mode 644\)/);
    assert.match(warning, /\$\.hat\.client_token/);
    assert.ok(!warning.includes("tok'"), 'the warning names paths, not values');
    chmodSync(file, 0o640);
    assert.equal(worldReadableWarning(file, conf), null);
    chmodSync(file, 0o644);
    assert.equal(worldReadableWarning(file, defaultConfig()), null);
  });
});
