import assert from 'node:assert/strict';
import { discoveryName, reconcile, urlFor, type Discovered } from '../../services/ollama/discovery';

describe('backend discovery (services/ollama/discovery)', () => {
  describe('urlFor', () => {
    const rows: Array<[string, string, string]> = [
      ['http://ollama-pods.ai.svc:11434', '10.0.0.7', 'http://10.0.0.7:11434'],
      ['http://ollama-pods:11434/', 'fd00::7', 'http://[fd00::7]:11434'],
      ['https://u:p@ollama-pods/base/', '10.0.0.7', 'https://u:p@10.0.0.7/base'],
      ['http://user@ollama-pods:8080', '10.0.0.7', 'http://user@10.0.0.7:8080'],
    ];
    for (const [template, address, url] of rows) {
      it(`reaches ${address} from ${template} at ${url}`, () => {
        assert.equal(urlFor(new URL(template), address), url);
      });
    }
  });

  it('resolves the name of the discovery URL, an IPv6 literal without its brackets', () => {
    assert.equal(discoveryName(new URL('http://ollama-pods.ai.svc:11434')), 'ollama-pods.ai.svc');
    assert.equal(discoveryName(new URL('http://[fd00::1]:11434')), 'fd00::1');
  });

  describe('reconcile', () => {
    it('drains backends whose address is gone, brings back one that returned, and names the new addresses', () => {
      const known: Discovered[] = [
        { id: '0', draining: false },
        { id: '10.0.0.1', address: '10.0.0.1', draining: false },
        { id: '10.0.0.2', address: '10.0.0.2', draining: true },
        { id: '10.0.0.3', address: '10.0.0.3', draining: false },
      ];
      const drained: string[] = [];
      const joining = reconcile(known, ['10.0.0.2', '10.0.0.3', '10.0.0.4'], (b) =>
        drained.push(b.id),
      );
      assert.deepEqual(joining, ['10.0.0.4']);
      assert.deepEqual(drained, ['10.0.0.1']);
      assert.deepEqual(
        known.map((b) => [b.id, b.draining]),
        [
          ['0', false],
          ['10.0.0.1', true],
          ['10.0.0.2', false],
          ['10.0.0.3', false],
        ],
      );
      // A backend already draining is not drained again.
      reconcile(known, [], (b) => drained.push(b.id));
      assert.deepEqual(drained, ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
      assert.equal(known[0]!.draining, false, 'a configured backend is never drained by discovery');
    });
  });
});
