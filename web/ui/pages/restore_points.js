// TODO(issue 16): this page is being built.
import { h, replace } from '../lib/dom.js';

export async function render(ctx) {
  replace(ctx.main, h('h1', 'restore_points'), h('p', 'This page is not built yet.'));
}
