import { OPS_AUTH } from './platform.js';
import { runInNewContext } from 'node:vm';

/**
 * Just enough of a DOM to run the dashboard script in Node against a live server, where no
 * browser is installed: elements by id with text, children and attributes.
 */
export class FakeElement {
  textContent = '';
  className = '';
  readonly children: FakeElement[] = [];
  readonly attributes = new Map<string, string>();
  readonly dataset: Record<string, string> = {};

  constructor(readonly tag: string) {}

  setAttribute(name: string, value: string): void {
    this.attributes.set(name, value);
  }

  appendChild(child: FakeElement): void {
    this.children.push(child);
  }

  replaceChildren(...children: FakeElement[]): void {
    this.children.splice(0, this.children.length, ...children);
  }

  /** Text of this element and its descendants, as a browser's textContent of the subtree. */
  allText(): string {
    return [this.textContent, ...this.children.map((c) => c.allText())].join(' ').trim();
  }
}

export function runDashboardScript(script: string, baseUrl: string): { byId: Map<string, FakeElement>; body: FakeElement } {
  const byId = new Map<string, FakeElement>();
  const body = new FakeElement('body');
  const document = {
    body,
    getElementById(id: string): FakeElement {
      let el = byId.get(id);
      if (!el) byId.set(id, (el = new FakeElement(id)));
      return el;
    },
    createElement: (tag: string) => new FakeElement(tag),
    createElementNS: (_ns: string, tag: string) => new FakeElement(tag),
  };
  // A signed-in browser sends its session cookie with every request; here, the operator token.
  const relativeFetch = (path: string, init?: RequestInit): Promise<Response> => fetch(new URL(path, baseUrl), { ...init, headers: { ...OPS_AUTH.headers } });
  runInNewContext(script, { document, fetch: relativeFetch, setInterval: () => 0, Date, Math, Object, String, Number, Promise, URL, Error, console });
  return { byId, body };
}
