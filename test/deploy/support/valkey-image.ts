/**
 * Facts about the pinned `valkey/valkey` image that decide how the chart runs it, read in
 * valkey-io/valkey-container (the project's image repository). Paraphrased, not copied.
 *
 * - The tag: bashbrew_output.json at commit f12e43080f09e44a0a9dec367987c999af3bce20 builds
 *   9.0/debian/Dockerfile as `9.0.2`, `9.0`, `9`, `latest` and `9.0.2-trixie` (8.1.5, 8.0.6
 *   and 7.2.11 are the older lines).
 * - 9.0/debian/Dockerfile (commit e5c1d23df529a05a9022ba7260d1553011cbf1ad; the 9.0 line shares
 *   the template): final stage `FROM debian:trixie-slim`; `groupadd -r -g 999 valkey` and
 *   `useradd -r -g valkey -u 999 valkey`; the binaries in /usr/local/bin (valkey-cli and the
 *   others are links to valkey-server); `/data` and `/run/valkey` created and owned by
 *   valkey:valkey; `WORKDIR /data`; `EXPOSE 6379`; no `USER` (root unless the pod says
 *   otherwise); `ENTRYPOINT ["docker-entrypoint.sh"]`, `CMD ["valkey-server"]`. The build
 *   patches the default of protected-mode to off, so the chart's config turns it on again.
 * - docker-entrypoint.sh (commit 49e7a04a514cb4f7c00ee1f764298f7d4a6bf656): as root it chowns
 *   the working directory and re-executes itself as `valkey` through setpriv; otherwise it only
 *   sets umask 0077 and runs the command. The chart's command replaces it: the pod runs as 999.
 * - valkey-io/valkey src/server.c (main): a first argument not starting with `-` is the config
 *   file; a last argument `-` reads more configuration from stdin, which is how the chart hands
 *   over `requirepass` without putting it on a command line. src/valkey-cli.c: `REDISCLI_AUTH`
 *   is the environment variable valkey-cli takes a password from.
 * - The server writes only in its `dir` (the append-only file and RDB files); with persistence
 *   off and `save ""` it writes nothing.
 */
export const VALKEY_IMAGE = {
  repository: 'valkey/valkey',
  tag: '9.0.2',
  uid: 999,
  gid: 999,
  /** Where the image keeps its data (WORKDIR, owned by the valkey user). */
  dataDir: '/data',
  port: 6379,
};
