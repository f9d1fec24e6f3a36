// The trace schema is imported as data (esbuild inlines it); the checker needs no static type for it.
declare module '*/schema.json' {
  const value: unknown;
  export default value;
}
