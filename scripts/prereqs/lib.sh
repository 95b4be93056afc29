# Sourced by the prereq scripts.

# Whether commands can run as root here: as root itself, or through `sudo -n` (no password).
can_be_root() {
  [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }
}

# Runs a command as root (see can_be_root).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

# Installs the Debian packages that are missing, with one `apt-get update` per script, waiting
# for a dpkg lock another install holds (unattended-upgrades on a fresh VM) instead of failing.
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! can_be_root; then
    echo "need root to install: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
  if [ -z "${OAG_APT_UPDATED:-}" ]; then
    as_root "${apt[@]}" update -qq
    OAG_APT_UPDATED=1
  fi
  as_root "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
