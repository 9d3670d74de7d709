/**
 * inmesh: an in-process service mesh for Node.js. This file is the public
 * surface only: it re-exports, and nothing inside src/ imports it.
 */
export * from './errors.ts';
export type * from './policy/types.ts';
