/**
 * The free identifiers of a function's or class's source text: names it
 * uses that none of its own scopes declare. Parses with acorn (loaded on
 * first use, so only processes that ship code by value pay for it) and walks
 * the ESTree scopes itself: functions (parameters, `arguments`, a named
 * function expression's own name), blocks (`let`, `const`, `class`,
 * function declarations), `var` hoisting, `catch` parameters, `for`
 * heads, classes (a class expression's own name) and static blocks.
 * Also finds `import(...)` and `import.meta`, which the shipped text
 * replaces with the worker's equivalents bound to the defining file.
 * @internal
 */
import type * as acorn from 'acorn';

/** One source text, analysed. */
export interface Analysis {
  /** how the text parses: an expression (function, arrow, class) or an object-literal method (`m(x) { ... }`) */
  form: 'expression' | 'method';
  /** whether it parses as strict code (as modules, classes and TypeScript output are) */
  strict: boolean;
  /** free identifiers, in order of first use */
  free: string[];
  /** `exports.NAME` reads of a free `exports` (TypeScript's way to reach a module's own exports); `exports[…]` and `module.exports` as such */
  exportReads: string[];
  /** whether it uses the `this` of the code around it (an arrow function's `this`, outside any function or class of its own) */
  outerThis: boolean;
  /** start offsets (in the source text) of `import` in `import(...)` */
  dynamicImports: number[];
  /** start and end offsets of `import.meta` */
  importMetas: Array<[number, number]>;
}

interface Scope {
  readonly parent: Scope | undefined;
  /** a function (or static block): `var` declarations land here */
  readonly fn: boolean;
  /** a scope with a `this` of its own: a non-arrow function, a class body */
  readonly ownThis: boolean;
  readonly names: Set<string>;
}

type Node = acorn.Node & Record<string, unknown>;

const SKIP_KEYS = new Set(['type', 'start', 'end', 'loc', 'range']);

let acornModule: typeof acorn | undefined;
function parser(): typeof acorn {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  acornModule ??= require('acorn') as typeof acorn;
  return acornModule;
}

/** Parses `src` in the first form and mode that accepts it; throws the parser's SyntaxError otherwise. */
function parse(src: string): { ast: acorn.Program; form: Analysis['form']; strict: boolean; offset: number } {
  const a = parser();
  const attempts: Array<{ form: Analysis['form']; strict: boolean; pre: string; post: string }> = [
    { form: 'expression', strict: true, pre: '(', post: '\n)' },
    { form: 'expression', strict: false, pre: '(', post: '\n)' },
    { form: 'method', strict: true, pre: '({', post: '\n})' },
    { form: 'method', strict: false, pre: '({', post: '\n})' },
  ];
  let first: unknown;
  for (const t of attempts) {
    try {
      const ast = a.parse(t.pre + src + t.post, { ecmaVersion: 'latest', sourceType: t.strict ? 'module' : 'script', allowHashBang: false });
      const body = ast.body;
      if (body.length !== 1 || body[0]?.type !== 'ExpressionStatement') throw new SyntaxError('not a single expression');
      return { ast, form: t.form, strict: t.strict, offset: t.pre.length };
    } catch (e) {
      first ??= e;
    }
  }
  throw first;
}

/** Analyses a function's or class's source text (as `Function.prototype.toString` gives it). */
export function analyze(src: string): Analysis {
  const { ast, form, strict, offset } = parse(src);
  const refs: Array<{ name: string; scope: Scope }> = [];
  const exportReads: Array<{ name: string; scope: Scope; via: 'exports' | 'module' }> = [];
  const dynamicImports: number[] = [];
  const importMetas: Array<[number, number]> = [];
  const root: Scope = { parent: undefined, fn: true, ownThis: form === 'method', names: new Set() };
  let outerThis = false;

  const child = (parent: Scope, fn: boolean, ownThis = false): Scope => ({ parent, fn, ownThis, names: new Set() });
  const thisIsOwn = (s: Scope): boolean => {
    for (let c: Scope | undefined = s; c; c = c.parent) if (c.ownThis) return true;
    return false;
  };
  const fnScope = (s: Scope): Scope => {
    let c: Scope = s;
    while (!c.fn && c.parent) c = c.parent;
    return c;
  };

  const declare = (p: Node | null | undefined, s: Scope): void => {
    if (!p) return;
    switch (p.type) {
      case 'Identifier':
        s.names.add(p.name as string);
        break;
      case 'ObjectPattern':
        for (const prop of p.properties as Node[]) declare((prop.type === 'RestElement' ? prop.argument : prop.value) as Node, s);
        break;
      case 'ArrayPattern':
        for (const el of p.elements as Array<Node | null>) declare(el, s);
        break;
      case 'RestElement':
        declare(p.argument as Node, s);
        break;
      case 'AssignmentPattern':
        declare(p.left as Node, s);
        break;
      default:
        break;
    }
  };

  /**
   * The expressions inside a pattern: default values and computed keys. In a
   * binding pattern (`leaves: false`) its names are declarations; in an
   * assignment target (`x = ...`, `for (x of ...)`) they are uses, as are
   * member expressions there.
   */
  const patternParts = (p: Node | null | undefined, s: Scope, leaves: boolean): void => {
    if (!p) return;
    switch (p.type) {
      case 'ObjectPattern':
        for (const prop of p.properties as Node[]) {
          if (prop.type === 'RestElement') patternParts(prop.argument as Node, s, leaves);
          else {
            if (prop.computed) visit(prop.key as Node, s);
            patternParts(prop.value as Node, s, leaves);
          }
        }
        break;
      case 'ArrayPattern':
        for (const el of p.elements as Array<Node | null>) patternParts(el, s, leaves);
        break;
      case 'RestElement':
        patternParts(p.argument as Node, s, leaves);
        break;
      case 'AssignmentPattern':
        patternParts(p.left as Node, s, leaves);
        visit(p.right as Node, s);
        break;
      default:
        if (leaves) visit(p, s);
    }
  };
  const patternExprs = (p: Node | null | undefined, s: Scope): void => patternParts(p, s, false);
  const target = (p: Node | null | undefined, s: Scope): void => patternParts(p, s, true);

  const fn = (f: Node, outer: Scope): void => {
    const s = child(outer, true, f.type !== 'ArrowFunctionExpression');
    if (f.type === 'FunctionExpression' && f.id) declare(f.id as Node, s);
    if (f.type !== 'ArrowFunctionExpression') s.names.add('arguments');
    for (const p of f.params as Node[]) declare(p, s);
    for (const p of f.params as Node[]) patternExprs(p, s);
    const body = f.body as Node;
    if (body.type === 'BlockStatement') for (const st of body.body as Node[]) visit(st, s);
    else visit(body, s);
  };

  const cls = (c: Node, outer: Scope): void => {
    if (c.superClass) visit(c.superClass as Node, outer);
    const s = child(outer, false, true);
    if (c.type === 'ClassExpression' && c.id) declare(c.id as Node, s);
    for (const el of (c.body as Node).body as Node[]) {
      if (el.type === 'StaticBlock') {
        const b = child(s, true, true);
        for (const st of el.body as Node[]) visit(st, b);
        continue;
      }
      if (el.computed) visit(el.key as Node, s);
      if (el.value) visit(el.value as Node, s);
    }
  };

  function visit(n: Node | null | undefined, s: Scope): void {
    if (!n) return;
    switch (n.type) {
      case 'Identifier':
        refs.push({ name: n.name as string, scope: s });
        return;
      case 'FunctionDeclaration':
        declare(n.id as Node, s);
        fn(n, s);
        return;
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        fn(n, s);
        return;
      case 'ClassDeclaration':
        declare(n.id as Node, s);
        cls(n, s);
        return;
      case 'ClassExpression':
        cls(n, s);
        return;
      case 'VariableDeclaration': {
        const into = n.kind === 'var' ? fnScope(s) : s;
        for (const d of n.declarations as Node[]) {
          declare(d.id as Node, into);
          patternExprs(d.id as Node, s);
          visit(d.init as Node, s);
        }
        return;
      }
      case 'BlockStatement':
      case 'StaticBlock': {
        const b = child(s, n.type === 'StaticBlock');
        for (const st of n.body as Node[]) visit(st, b);
        return;
      }
      case 'ForStatement': {
        const b = child(s, false);
        visit(n.init as Node, b);
        visit(n.test as Node, b);
        visit(n.update as Node, b);
        visit(n.body as Node, b);
        return;
      }
      case 'ForInStatement':
      case 'ForOfStatement': {
        const b = child(s, false);
        const left = n.left as Node;
        if (left.type === 'VariableDeclaration') visit(left, b);
        else target(left, b);
        visit(n.right as Node, b);
        visit(n.body as Node, b);
        return;
      }
      case 'SwitchStatement': {
        visit(n.discriminant as Node, s);
        const b = child(s, false);
        for (const c of n.cases as Node[]) {
          visit(c.test as Node, b);
          for (const st of c.consequent as Node[]) visit(st, b);
        }
        return;
      }
      case 'CatchClause': {
        const b = child(s, false);
        declare(n.param as Node, b);
        patternExprs(n.param as Node, b);
        visit(n.body as Node, b);
        return;
      }
      case 'AssignmentExpression':
        target(n.left as Node, s);
        visit(n.right as Node, s);
        return;
      case 'ThisExpression':
        if (!thisIsOwn(s)) outerThis = true;
        return;
      case 'MemberExpression': {
        const obj = n.object as Node;
        const prop = n.property as Node;
        if (obj.type === 'Identifier' && obj.name === 'exports') exportReads.push({ name: n.computed ? '[…]' : (prop.name as string), scope: s, via: 'exports' });
        // module.exports is the worker's own (empty) one there
        if (obj.type === 'Identifier' && obj.name === 'module' && !n.computed && prop.name === 'exports') exportReads.push({ name: '', scope: s, via: 'module' });
        visit(obj, s);
        if (n.computed) visit(n.property as Node, s);
        return;
      }
      case 'Property':
        if (n.computed) visit(n.key as Node, s);
        visit(n.value as Node, s);
        return;
      case 'LabeledStatement':
        visit(n.body as Node, s);
        return;
      case 'BreakStatement':
      case 'ContinueStatement':
        return;
      case 'MetaProperty':
        if ((n.meta as Node).name === 'import') importMetas.push([n.start - offset, n.end - offset]);
        return;
      case 'ImportExpression':
        dynamicImports.push(n.start - offset);
        visit(n.source as Node, s);
        visit(n.options as Node, s);
        return;
      default:
        for (const k in n) {
          if (SKIP_KEYS.has(k)) continue;
          const v = n[k];
          if (Array.isArray(v)) {
            for (const x of v) if (x && typeof x === 'object' && typeof (x as Node).type === 'string') visit(x as Node, s);
          } else if (v && typeof v === 'object' && typeof (v as Node).type === 'string') visit(v as Node, s);
        }
    }
  }

  visit((ast.body[0] as acorn.ExpressionStatement).expression as Node, root);

  const bound = (name: string, s: Scope): boolean => {
    for (let c: Scope | undefined = s; c; c = c.parent) if (c.names.has(name)) return true;
    return false;
  };
  const free: string[] = [];
  const seen = new Set<string>();
  for (const r of refs) {
    if (seen.has(r.name) || bound(r.name, r.scope)) continue;
    seen.add(r.name);
    free.push(r.name);
  }
  const reads = [...new Set(exportReads.filter((r) => !bound(r.via, r.scope)).map((r) => (r.via === 'module' ? 'module.exports' : r.name === '[…]' ? 'exports[…]' : `exports.${r.name}`)))];
  return { form, strict, free, exportReads: reads, outerThis, dynamicImports, importMetas };
}
