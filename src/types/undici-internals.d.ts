// The one undici internal inmesh reads (src/client/undici-internals.ts says why).
declare module 'undici/lib/core/symbols.js' {
  const symbols: { readonly kQueuedAbort?: symbol };
  export default symbols;
}
