# Sourced by the prereq scripts: apt install with one `apt-get update` per run.
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "need root to install: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
  local marker=/tmp/.oag-apt-updated
  if [ ! -f "$marker" ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq && touch "$marker"; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
