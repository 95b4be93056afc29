import assert from 'node:assert/strict';
import { createSsrfGuard, classifyAddress, SsrfError } from '../../services/net/ssrf-guard';

describe('SSRF guard', () => {
  const fakeDns: Record<string, string> = {
    'public.example': '93.184.216.34',
    'internal.example': '10.1.2.3',
    'metadata.example': '169.254.169.254',
    'loop.example': '127.0.0.1',
  };
  const resolve = (host: string) => {
    const address = fakeDns[host];
    return address
      ? Promise.resolve([{ address, family: 4 }])
      : Promise.reject(new Error('ENOTFOUND'));
  };
  const guard = createSsrfGuard({
    allowHosts: [
      'public.example',
      'internal.example',
      'metadata.example',
      'loop.example',
      '127.0.0.1',
      '10.0.0.8',
      '169.254.169.254',
      '[::1]',
      '::1',
    ],
    resolve,
  });

  it('classifies special addresses', () => {
    assert.equal(classifyAddress('127.0.0.1'), 'loopback');
    assert.equal(classifyAddress('10.0.0.8'), 'private');
    assert.equal(classifyAddress('192.168.1.1'), 'private');
    assert.equal(classifyAddress('169.254.169.254'), 'linkLocal');
    assert.equal(classifyAddress('::1'), 'loopback');
    assert.equal(classifyAddress('::ffff:127.0.0.1'), 'loopback');
    assert.equal(classifyAddress('fd00:ec2::254'), 'uniqueLocal');
    assert.equal(classifyAddress('100.100.100.200'), 'carrierGradeNat');
    assert.equal(classifyAddress('0.0.0.0'), 'unspecified');
    assert.equal(classifyAddress('93.184.216.34'), 'unicast');
  });

  const refusals: Array<[string, SsrfError['reason']]> = [
    ['https://127.0.0.1/', 'address_refused'],
    ['https://2130706433/', 'address_refused'],
    ['https://10.0.0.8/x', 'address_refused'],
    ['https://169.254.169.254/latest/meta-data/', 'address_refused'],
    ['https://[::1]/', 'address_refused'],
    ['https://internal.example/', 'address_refused'],
    ['https://metadata.example/', 'address_refused'],
    ['https://loop.example/', 'address_refused'],
    ['https://elsewhere.example/', 'host_not_allowed'],
    ['http://public.example/', 'scheme'],
    ['file:///etc/passwd', 'scheme'],
    ['https://user:pw@public.example/', 'credentials'],
    ['not a url', 'url'],
  ];
  for (const [url, reason] of refusals) {
    it(`refuses ${url} (${reason})`, async () => {
      await assert.rejects(guard.check(url), (err: unknown) => {
        assert.ok(err instanceof SsrfError);
        assert.equal(err.reason, reason);
        return true;
      });
    });
  }

  describe('when an IPv6 literal is not global unicast', () => {
    const open = createSsrfGuard({ allowHosts: null, resolve });
    for (const url of [
      'https://[::7f00:1]/',
      'https://[::127.0.0.1]/',
      'https://[::a9fe:a9fe]/',
      'https://[::808:808]/',
      'https://[4000::1]/',
      'https://[100::1]/',
    ]) {
      it(`refuses ${url} (address_refused)`, async () => {
        await assert.rejects(open.check(url), (err: unknown) => {
          assert.ok(err instanceof SsrfError);
          assert.equal(err.reason, 'address_refused');
          return true;
        });
      });
    }

    it('still accepts a global unicast IPv6 address and a public IPv4-mapped one', async () => {
      assert.equal(classifyAddress('::7f00:1'), 'ipv4Compatible');
      assert.equal(classifyAddress('4000::1'), 'notGlobalUnicast');
      assert.equal((await open.check('https://[2606:4700::1111]/')).hostname, '[2606:4700::1111]');
      assert.equal(classifyAddress('::ffff:93.184.216.34'), 'unicast');
    });
  });

  it('accepts https to an allowlisted public host', async () => {
    assert.equal(
      (await guard.check('https://public.example/a?b=1')).href,
      'https://public.example/a?b=1',
    );
  });

  it('lets trusted hosts use http and private addresses', async () => {
    const trusted = createSsrfGuard({ allowHosts: null, trustedHosts: ['127.0.0.1'], resolve });
    assert.equal((await trusted.check('http://127.0.0.1:9/hook')).port, '9');
    await assert.rejects(trusted.check('https://10.0.0.8/'), /private/);
  });

  it('refuses a private address at connect time (DNS rebinding)', async () => {
    const answers = ['93.184.216.34', '10.0.0.1'];
    const rebinding = createSsrfGuard({
      allowHosts: ['flip.example'],
      resolve: () => Promise.resolve([{ address: answers.shift() ?? '10.0.0.1', family: 4 }]),
    });
    await rebinding.check('https://flip.example/');
    const err = await new Promise<Error | null>((resolve) =>
      rebinding.lookup('flip.example', { all: false }, (e) => resolve(e)),
    );
    assert.match(String(err?.message), /private address/);
  });
});
