// The memo pattern of the policy code's caches (a Map or WeakMap per object, a Map per key inside):
// the value under `key`, made and stored by `make` the first time.
export function getOrSet<K, V>(
  map: { get(key: K): V | undefined; set(key: K, value: V): unknown },
  key: K,
  make: () => V,
): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}
