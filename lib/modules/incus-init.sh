# Initialises a fresh Incus for inx and leaves one that is set up as it is: the host module's
# `inx-incus-init` service (services.inx.initialise) runs it after every start of incusd.
#   INX_BRIDGE=NAME INX_BRIDGE_ADDRESS=CIDR incus-init.sh   (NAME empty: the default profile gets
#   no network device)
# Incus counts as set up once its `default` profile has a device; a fresh Incus has none. Then
# this creates what is missing of: a `dir` storage pool `default`, the bridge (a managed one
# with that address and NAT), and the profile's root disk on that pool and its NIC `eth0` on the
# bridge. It never changes nor deletes an existing pool, network or device, so it is safe to
# run again, at every boot: after its first success the profile has devices and it stops there.
set -eu
bridge=$INX_BRIDGE
address=$INX_BRIDGE_ADDRESS

devices=$(incus profile device list default)
if [ -n "$devices" ]; then
  echo "inx: Incus is set up already (the default profile has devices: $(printf '%s' "$devices" | tr '\n' ' ')): nothing changed"
  exit 0
fi

if incus storage show default >/dev/null 2>&1; then
  echo "inx: keeping the storage pool default"
else
  echo "inx: creating the storage pool default (dir)"
  incus storage create default dir
fi

nic=
if [ -n "$bridge" ]; then
  if incus network show "$bridge" >/dev/null 2>&1; then
    echo "inx: keeping the network $bridge"
  else
    echo "inx: creating the bridge $bridge ($address, NAT)"
    incus network create "$bridge" "ipv4.address=$address" ipv4.nat=true
  fi
  # An interface Incus does not manage (a host bridge of the user's own) is joined as a parent.
  if incus network show "$bridge" | grep -qx 'managed: true'; then
    nic="network=$bridge"
  else
    nic="nictype=bridged parent=$bridge"
  fi
fi

echo "inx: adding a root disk on the pool default to the default profile"
incus profile device add default root disk path=/ pool=default
if [ -n "$nic" ]; then
  echo "inx: adding eth0 on $bridge to the default profile"
  # $nic is one or two key=value words, split on purpose.
  # shellcheck disable=SC2086
  incus profile device add default eth0 nic name=eth0 $nic
fi
