/**
 * `derive`, computed once per object it is given (held weakly, so a ring or an app that is
 * dropped takes its derived value with it).
 */
export function oncePer<K extends object, V>(derive: (key: K) => V): (key: K) => V {
  const values = new WeakMap<K, V>();
  return (key) => {
    if (!values.has(key)) values.set(key, derive(key));
    return values.get(key)!;
  };
}
