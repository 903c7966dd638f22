#!/usr/bin/env bash
# Install torchgrade and everything it needs on a fresh Debian/Ubuntu machine.
#   ./scripts/install.sh            system packages (as root) + Python packages
#   SKIP_SYSTEM=1 ./scripts/install.sh   Python packages only (a student's laptop)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

if [ -z "${SKIP_SYSTEM:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  command -v bwrap >/dev/null || need+=(bubblewrap)          # the sandbox's namespaces
  command -v setpriv >/dev/null || need+=(util-linux)        # the drop to an unprivileged uid
  ldconfig -p | grep -q libseccomp.so.2 || need+=(libseccomp2)  # the seccomp filter
  command -v redis-server >/dev/null || need+=(redis-server) # broker at scale, and the tests
  command -v pg_ctlcluster >/dev/null || need+=(postgresql)  # database at scale, and the tests
  command -v chromium >/dev/null || need+=(chromium)         # browser tests
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

# torch pinned to the CPU build beside the project's range, so pip never picks a CUDA build.
python -m pip install -q torch==2.13.0 -e ".[web,workers,dev]"

# A start-up hook so `python -m grader.cli` (or -m workers, -m web) never imports a module
# from the working directory, a folder of submissions say (grader/safe_path.py).
python -c "from grader.safe_path import write_pth; print('wrote', write_pth())"
