import type { Dispatcher } from 'undici';
import { describe, expectTypeOf, it } from 'vitest';
import {
  createMesh,
  isInmeshError,
  type CallOptions,
  type InmeshError,
  type Mesh,
  type MeshOptions,
  type MeshResponse,
  type MeshRequestOptions,
} from '../../src/index.ts';

describe('client public types', () => {
  it('createMesh returns a Mesh', () => {
    expectTypeOf(createMesh).parameter(0).toEqualTypeOf<MeshOptions | undefined>();
    expectTypeOf(createMesh()).toEqualTypeOf<Mesh>();
  });

  it('mesh.request has undici request semantics plus endpoint and attempts', () => {
    const mesh = createMesh();
    expectTypeOf<Parameters<Mesh['request']>[0]>().toEqualTypeOf<string | URL>();
    expectTypeOf(mesh.request('http://orders/')).resolves.toEqualTypeOf<MeshResponse>();
    expectTypeOf<MeshResponse['statusCode']>().toEqualTypeOf<number>();
    expectTypeOf<MeshResponse['body']>().toEqualTypeOf<Dispatcher.ResponseData['body']>();
    expectTypeOf<MeshResponse['endpoint']>().toEqualTypeOf<string>();
    expectTypeOf<MeshResponse['attempts']>().toEqualTypeOf<number>();
    expectTypeOf<MeshRequestOptions>().toExtend<CallOptions>();
    // A type test: never run, so the call's promise is only checked, not awaited.
    // @ts-expect-error retries is a number or false
    void mesh.request('http://orders/', { retries: true });
  });

  it('mesh.fetch is a fetch drop-in', () => {
    const mesh = createMesh();
    expectTypeOf(mesh.fetch('http://orders/')).resolves.toEqualTypeOf<Response>();
    expectTypeOf<Mesh["fetch"]>().toBeCallableWith(new Request('http://orders/'), { signal: AbortSignal.timeout(1), timeout: 5, hashKey: 'k' });
    expectTypeOf(mesh.dispatcher).toExtend<Dispatcher>();
    expectTypeOf(mesh.close()).resolves.toBeVoid();
  });

  it('isInmeshError narrows', () => {
    const e: unknown = new Error('x');
    if (isInmeshError(e)) expectTypeOf(e).toEqualTypeOf<InmeshError>();
  });

  it('options accept a static registry map', () => {
    expectTypeOf<{ registry: { static: Record<string, string[]> } }>().toExtend<MeshOptions>();
  });
});
