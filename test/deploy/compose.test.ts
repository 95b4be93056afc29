import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config';
import { createSchemaRegistry } from '../../src/validation';
import { ROOT } from './support/render';

/**
 * docker-compose.yml, read as Docker Compose would (no Docker engine runs here): the three
 * services, how they start in order, what is published, and that every variable the gateway
 * gets is one the service's configuration schema declares.
 */
interface ComposeService {
  image?: string;
  build?: unknown;
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: {
    resources?: {
      limits?: { memory?: string };
      reservations?: { devices?: Array<{ driver: string; capabilities: string[] }> };
    };
  };
  read_only?: boolean;
}

const composeText = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const schema = JSON.parse(
  readFileSync(path.join(ROOT, 'schemas', 'config.schema.json'), 'utf8'),
) as { properties: Record<string, unknown> };
const values = parse(
  readFileSync(path.join(ROOT, 'helm', 'ollama-agent-gateway', 'values.yaml'), 'utf8'),
) as {
  gateway: { resources: { limits: { memory: string } } };
  ollama: { image: { repository: string; tag: string } };
  redis: { image: { repository: string; tag: string } };
};

/**
 * The gateway's environment as Compose interpolates it: `${NAME:-default}` gives its default,
 * `${NAME:?message}` the value `given` has for NAME (Compose stops with the message without one).
 */
function interpolated(given: Record<string, string>): Record<string, string> {
  const env = service('gateway').environment ?? {};
  return Object.fromEntries(
    Object.entries(env).map(([key, value]) => [
      key,
      String(value).replace(
        /\$\{(\w+):([-?])([^}]*)\}/g,
        (_, name: string, op: string, rest: string) => {
          if (op === '-') return given[name] ?? rest;
          const v = given[name];
          assert.ok(v !== undefined, `no value for ${name}`);
          return v;
        },
      ),
    ]),
  );
}

/** The README's Docker Compose section, up to the next heading of its level. */
function readmeComposeSection(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('\n### Docker Compose\n');
  assert.ok(at >= 0, 'the README has a Docker Compose section');
  const end = readme.indexOf('\n### ', at + 1);
  return readme.slice(at, end < 0 ? undefined : end);
}

const service = (name: string): ComposeService => {
  const s = compose.services[name];
  assert.ok(s, `service ${name}`);
  return s;
};

describe('docker-compose.yml', () => {
  it('runs ollama, the gateway and redis, and nothing else', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['gateway', 'ollama', 'redis']);
  });

  describe('the gateway', () => {
    it('is built from this Dockerfile and publishes only its own port', () => {
      const gw = service('gateway');
      assert.ok(gw.build, 'built from the repository');
      assert.deepEqual(gw.ports, ['8080:8080']);
      assert.equal(gw.environment?.PORT, '8080');
      for (const other of ['ollama', 'redis']) assert.equal(service(other).ports, undefined);
    });

    it('gets only variables the configuration schema declares, and reaches the others by name', () => {
      const env = service('gateway').environment ?? {};
      for (const name of Object.keys(env)) {
        assert.ok(name in schema.properties, `${name} is not in schemas/config.schema.json`);
      }
      assert.equal(env.OLLAMA_HOST, 'http://ollama:11434');
      assert.equal(env.REDIS_URL, 'redis://redis:6379');
      assert.equal(env.NODE_ENV, 'production');
      assert.match(String(env.API_KEYS), /^\$\{GATEWAY_API_KEYS:\?/, 'no gateway without keys');
    });

    describe('with the GATEWAY_API_KEYS examples', () => {
      const examples = [
        ['the header of docker-compose.yml', composeText.split('\nname:')[0] ?? ''],
        ['the `:?` message', String(service('gateway').environment?.API_KEYS)],
        ["the README's Docker Compose section", readmeComposeSection()],
      ] as const;
      for (const [where, text] of examples) {
        it(`starts with the keys ${where} gives (loadConfig accepts the environment)`, () => {
          const keys = [...text.matchAll(/GATEWAY_API_KEYS='?([^'\s}]+)/g)].map((m) => m[1]!);
          assert.equal(keys.length, 1, `one example in ${where}`);
          const config = loadConfig(
            interpolated({ GATEWAY_API_KEYS: keys[0]! }),
            createSchemaRegistry(),
          );
          assert.equal(config.NODE_ENV, 'production');
          // The curl beside it uses the agent key of the same example.
          for (const bearer of text.matchAll(/Bearer ([^'\s]+)/g)) {
            assert.ok(
              keys[0]!.split(',').includes(`${bearer[1]!}:agent`),
              `${bearer[1]} is an agent key`,
            );
          }
        });
      }
    });

    it("keeps a model loaded as long as Ollama's own setting says (keep_alive is sent per request)", () => {
      const gateway = service('gateway').environment?.OLLAMA_KEEP_ALIVE;
      assert.ok(gateway, 'the gateway sends keep_alive with every request');
      assert.equal(gateway, service('ollama').environment?.OLLAMA_KEEP_ALIVE);
    });

    it('starts once Ollama and Redis report healthy', () => {
      assert.deepEqual(service('gateway').depends_on, {
        ollama: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
      assert.equal(service('gateway').read_only, true);
    });

    it("has the chart's memory limit, which Node sizes its heap from", () => {
      const chart = /^(\d+)Mi$/.exec(values.gateway.resources.limits.memory);
      assert.ok(chart, 'the chart states its limit in Mi');
      // Compose reads m/M as mebibytes (docker's RAMInBytes), Kubernetes writes Mi.
      const limit = /^(\d+)[mM]$/.exec(service('gateway').deploy?.resources?.limits?.memory ?? '');
      assert.ok(limit, 'a memory limit in M');
      assert.equal(limit[1], chart[1]);
    });
  });

  describe('ollama', () => {
    it("runs the Ollama release the chart pins, its models in a named volume at the image's path", () => {
      const ollama = service('ollama');
      const { repository, tag } = values.ollama.image;
      assert.equal(ollama.image, `${repository}:${tag}`, 'the release the chart pins');
      const mount = ollama.volumes?.find((v) => v.endsWith(':/root/.ollama'));
      assert.ok(mount, 'a volume at /root/.ollama');
      assert.ok(mount.split(':')[0]! in compose.volumes, 'a named volume, not a bind mount');
    });

    it('reserves the NVIDIA GPUs', () => {
      const devices = service('ollama').deploy?.resources?.reservations?.devices ?? [];
      assert.ok(devices.some((d) => d.driver === 'nvidia' && d.capabilities.includes('gpu')));
    });
  });

  it('runs the Valkey release the chart pins', () => {
    const { repository, tag } = values.redis.image;
    assert.equal(service('redis').image, `${repository}:${tag}`);
  });

  it('gives ollama and redis a health check that needs no extra package', () => {
    assert.deepEqual(service('ollama').healthcheck?.test, ['CMD', 'ollama', 'list']);
    assert.deepEqual(service('redis').healthcheck?.test, ['CMD', 'valkey-cli', 'ping']);
  });
});
