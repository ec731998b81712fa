// The shared uniform buffers' key: equal exactly when the backend would write equal bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentKey } from '../../stages/model/kernels/webgpu/uniforms.js';

test('the uniform key is the bytes: float bits (-0, NaN), int32 wrap-around, and the type all count', () => {
  const key = (type: string, ...data: number[]): string => contentKey([{ type, data }]);
  assert.equal(key('float32', 0.5, 2), `f${0x3f000000},${0x40000000};`);
  assert.notEqual(key('float32', 0), key('float32', -0));
  assert.equal(key('float32', NaN), `f${0x7fc00000};`);
  assert.equal(key('float32', 0.1), key('float32', 0.10000000000000001), 'one float32');
  assert.notEqual(key('float32', 1), key('int32', 1));
  assert.equal(key('int32', -1, 2 ** 31), 'i-1,-2147483648;');
  assert.equal(key('uint32', -1), `u${2 ** 32 - 1};`);
  const both = contentKey([{ type: 'int32', data: [1, 2] }, { type: 'int32', data: [3] }]);
  assert.notEqual(both, contentKey([{ type: 'int32', data: [1] }, { type: 'int32', data: [2, 3] }]), 'entry borders count');
});
