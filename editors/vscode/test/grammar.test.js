// Tokenizes iade sources with the extension's TextMate grammar, using the same
// engine as VS Code (vscode-textmate on the Oniguruma WebAssembly build).
//
// Run with `npm test` (node --test test/).
'use strict';

const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const EXTENSION_DIR = path.resolve(__dirname, '..');
const REPO_DIR = path.resolve(__dirname, '..', '..', '..');
const GRAMMAR_PATH = path.join(EXTENSION_DIR, 'syntaxes', 'iade.tmLanguage.json');
const SOURCE_DIRS = [path.join(REPO_DIR, 'examples'), path.join(REPO_DIR, 'stdlib')];

/** @type {import('vscode-textmate').IGrammar} */
let grammar;

before(async () => {
  const wasmPath = path.join(path.dirname(require.resolve('vscode-oniguruma')), 'onig.wasm');
  const wasm = fs.readFileSync(wasmPath);
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) => {
      if (scopeName !== 'source.iade') {
        return null;
      }
      return vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR_PATH, 'utf8'), GRAMMAR_PATH);
    },
  });
  grammar = await registry.loadGrammar('source.iade');
  assert.ok(grammar, 'the grammar source.iade loads');
});

/**
 * Tokenizes `text` line by line, carrying the rule stack across lines.
 * Returns the tokens of every line and the stack depth after every line
 * (1 is the base state: no begin/end rule left open).
 */
function tokenize(text) {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') {
    lines.pop();
  }
  let ruleStack = vsctm.INITIAL;
  const result = [];
  lines.forEach((line, index) => {
    let tokenized;
    try {
      tokenized = grammar.tokenizeLine(line, ruleStack);
    } catch (err) {
      throw new Error(`line ${index + 1} (${JSON.stringify(line)}) throws: ${err}`);
    }
    assert.equal(tokenized.stoppedEarly, false, `line ${index + 1} stopped early`);
    ruleStack = tokenized.ruleStack;
    result.push({
      line: index + 1,
      text: line,
      depth: ruleStack.depth,
      tokens: tokenized.tokens.map((t) => ({
        text: line.substring(t.startIndex, t.endIndex),
        scopes: t.scopes,
      })),
    });
  });
  return { lines: result, endState: ruleStack };
}

/** The scopes of the first token of `line` whose text is `word` (trimmed). */
function scopesOf(tokenized, lineNumber, word) {
  const line = tokenized.lines[lineNumber - 1];
  const token = line.tokens.find((t) => t.text.trim() === word);
  assert.ok(token, `no token ${JSON.stringify(word)} on line ${lineNumber}: ${JSON.stringify(line.tokens)}`);
  return token.scopes;
}

function hasScope(scopes, prefix) {
  return scopes.some((s) => s === prefix || s.startsWith(prefix + '.'));
}

function assertScope(tokenized, lineNumber, word, prefix) {
  const scopes = scopesOf(tokenized, lineNumber, word);
  assert.ok(
    hasScope(scopes, prefix),
    `${JSON.stringify(word)} on line ${lineNumber} has scopes ${scopes.join(' ')}, expected ${prefix}`
  );
}

function assertBaseState(tokenized, name) {
  const open = tokenized.lines.filter((l) => l.depth !== 1).map((l) => l.line);
  assert.equal(
    tokenized.endState.depth,
    1,
    `${name}: a rule is still open at the end of the file (stack ${tokenized.endState}); ` +
      `lines ending inside a rule: ${open.join(', ')}`
  );
}

function iadeFiles(dir) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      found.push(...iadeFiles(full));
    } else if (entry.isFile() && entry.name.endsWith('.iade')) {
      found.push(full);
    }
  }
  return found.sort();
}

const SOURCES = SOURCE_DIRS.flatMap(iadeFiles);

test('finds the example and standard-library sources', () => {
  assert.ok(SOURCES.length > 0, `no .iade files under ${SOURCE_DIRS.join(', ')}`);
  for (const dir of SOURCE_DIRS) {
    assert.ok(
      SOURCES.some((f) => f.startsWith(dir + path.sep)),
      `no .iade file under ${dir}`
    );
  }
});

for (const file of SOURCES) {
  const name = path.relative(REPO_DIR, file);
  test(`tokenizes ${name}`, () => {
    const text = fs.readFileSync(file, 'utf8');
    const tokenized = tokenize(text);
    assertBaseState(tokenized, name);

    const all = tokenized.lines.flatMap((l) => l.tokens);
    const invalid = tokenized.lines.flatMap((l) =>
      l.tokens
        .filter((t) => t.scopes.some((s) => s.startsWith('invalid.')))
        .map((t) => `line ${l.line}: ${JSON.stringify(t.text)} ${t.scopes.join(' ')}`)
    );
    assert.deepEqual(invalid, [], `${name}: valid source marked invalid`);

    // Every keyword that starts a line outside strings gets a keyword or
    // storage scope.
    for (const l of tokenized.lines) {
      const first = l.tokens.find((t) => t.text.trim() !== '');
      if (!first) {
        continue;
      }
      const word = first.text.trim();
      const inString = first.scopes.some((s) => s.startsWith('string.') || s.startsWith('comment.'));
      if (!inString && /^(use|let|param|kind|rule|policy|control|for|if|require)$/.test(word)) {
        assert.ok(
          hasScope(first.scopes, 'keyword') || hasScope(first.scopes, 'storage.type'),
          `${name} line ${l.line}: ${word} has scopes ${first.scopes.join(' ')}`
        );
      }
      if (/^#/.test(l.text.trim()) && !inString) {
        assert.ok(
          hasScope(first.scopes, 'comment'),
          `${name} line ${l.line}: a comment line has scopes ${first.scopes.join(' ')}`
        );
      }
    }

    if (/^\s*(use|let)\b/m.test(text)) {
      assert.ok(
        all.some((t) => /^(use|let)$/.test(t.text) && (hasScope(t.scopes, 'keyword') || hasScope(t.scopes, 'storage.type'))),
        `${name}: no use/let keyword scope`
      );
    }
    if (text.includes('"')) {
      assert.ok(all.some((t) => hasScope(t.scopes, 'string')), `${name}: no string scope`);
    }
    if (/^\s*#/m.test(text)) {
      assert.ok(all.some((t) => hasScope(t.scopes, 'comment')), `${name}: no comment scope`);
    }
  });
}

test('keywords, strings and comments', () => {
  const t = tokenize(
    [
      'use std.fs.{file, directory as dir}',
      'let greeting = "hello ${name}, \\"quoted\\" $${HOME}" # trailing',
      '## A doc comment.',
      'param tier: "dev" | "prod" = "dev"',
      'rule small(n: int) = n < 10 else "too big"',
    ].join('\n')
  );
  assertScope(t, 1, 'use', 'keyword.control.import');
  assertScope(t, 1, 'std', 'entity.name.namespace');
  assertScope(t, 2, 'let', 'storage.type');
  assertScope(t, 2, 'greeting', 'variable.other.definition');
  assertScope(t, 2, 'hello', 'string.quoted.double');
  assertScope(t, 2, 'name', 'meta.interpolation');
  assertScope(t, 2, '\\"', 'constant.character.escape');
  assertScope(t, 2, '$${', 'constant.character.escape');
  assertScope(t, 2, 'trailing', 'comment.line.number-sign');
  assertScope(t, 3, 'A doc comment.', 'comment.line.documentation');
  assertScope(t, 4, 'param', 'storage.type.param');
  assertScope(t, 4, '|', 'keyword.operator.type.union');
  assertScope(t, 5, 'rule', 'storage.type.rule');
  assertScope(t, 5, 'small', 'entity.name.function.rule');
  assertScope(t, 5, 'else', 'keyword.control');
  assertBaseState(t, 'snippet');
});

test('a one-line string ends at the end of its line', () => {
  const t = tokenize(['x = "unterminated', 'y = 1'].join('\n'));
  assert.equal(t.lines[0].depth, 1);
  assertScope(t, 2, 'y', 'variable.other.property');
  assertScope(t, 2, '1', 'constant.numeric.integer.decimal');
  assertBaseState(t, 'snippet');
});

test('a multi-line string spans lines and closes', () => {
  const t = tokenize(
    [
      'file config {',
      '  content = """',
      '    # not a comment: ${port} "quotes" stay inside',
      '    second line',
      '    """',
      '  mode = 0o640',
      '}',
    ].join('\n')
  );
  assert.ok(t.lines[1].depth > 1, 'the string is open after its first line');
  assert.ok(t.lines[2].depth > 1 && t.lines[3].depth > 1, 'the string stays open');
  assertScope(t, 3, '# not a comment:', 'string.quoted.triple');
  assertScope(t, 3, 'port', 'meta.interpolation');
  assertScope(t, 4, 'second line', 'string.quoted.triple');
  assert.equal(t.lines[4].depth, 1, 'the closing """ ends the string');
  assertScope(t, 6, 'mode', 'variable.other.property');
  assertScope(t, 6, '0o640', 'constant.numeric.integer.octal');
  assertBaseState(t, 'snippet');
});

test('resources, kinds and providers', () => {
  const t = tokenize(
    [
      'pg.role app_user {',
      '  provider = main',
      '}',
      'file "log_${stream}" {',
      '}',
      'provider postgres main {',
      '}',
      'kind service {',
      '  identity name: string',
      '  desired port: int = 80 where port > 0',
      '}',
    ].join('\n')
  );
  assertScope(t, 1, 'pg.role', 'entity.name.type.kind');
  assertScope(t, 1, 'app_user', 'entity.name.function.resource');
  assertScope(t, 2, 'provider', 'variable.language.meta-attribute');
  assertScope(t, 4, 'file', 'entity.name.type.kind');
  assertScope(t, 4, 'log_', 'entity.name.function.resource');
  assertScope(t, 6, 'provider', 'keyword.other.provider');
  assertScope(t, 6, 'postgres', 'entity.name.type.provider');
  assertScope(t, 8, 'kind', 'storage.type.kind');
  assertScope(t, 9, 'identity', 'storage.modifier.role');
  assertScope(t, 9, 'name', 'variable.other.property.field');
  assertScope(t, 9, 'string', 'support.type.primitive');
  assertScope(t, 10, 'where', 'keyword.control');
  assertBaseState(t, 'snippet');
});

test('stack and component declarations', () => {
  const t = tokenize(
    [
      'stack webapp {',
      '  prune = true',
      '}',
      'component vhost(port: int, aliases: list(string) = [], docroot: path = dirname("/srv/www/x")) {',
      '  file conf {',
      '    path = "${docroot}/${name}.conf"',
      '  }',
      '}',
      'component empty {',
      '}',
      'component multi(',
      '  sites: list({ name: string, port: int }),',
      '  tier: "dev" | "prod" = "dev",',
      ') {',
      '}',
      'vhost api {',
      '  port = 8080',
      '}',
    ].join('\n')
  );
  assertScope(t, 1, 'stack', 'storage.type.stack');
  assertScope(t, 1, 'webapp', 'entity.name.namespace.stack');
  assertScope(t, 2, 'true', 'constant.language.boolean');
  assertScope(t, 4, 'component', 'storage.type.component');
  assertScope(t, 4, 'vhost', 'entity.name.type.component');
  assertScope(t, 4, 'port', 'variable.parameter');
  assertScope(t, 4, 'int', 'support.type.primitive');
  assertScope(t, 4, 'list', 'support.type');
  assertScope(t, 4, 'dirname', 'support.function.builtin');
  assertScope(t, 4, 'docroot', 'variable.parameter');
  assert.equal(t.lines[3].depth, 1, 'the parameter list closes on its line');
  assertScope(t, 5, 'file', 'entity.name.type.kind');
  assertScope(t, 9, 'component', 'storage.type.component');
  assertScope(t, 9, 'empty', 'entity.name.type.component');
  assertScope(t, 12, 'sites', 'variable.parameter');
  assertScope(t, 13, 'tier', 'variable.parameter');
  assert.equal(t.lines[13].depth, 1, 'a multi-line parameter list closes');
  assertScope(t, 16, 'vhost', 'entity.name.type.kind');
  assertScope(t, 16, 'api', 'entity.name.function.resource');
  assertBaseState(t, 'snippet');
});

test('comprehensions and meta-attributes', () => {
  const t = tokenize(
    [
      'let doubled = [p * 2 for p in ports if p > 80]',
      'let pairs = [ "${k}=${v}" for k, v in env ]',
      'file conf {',
      '  notify = [exec.reload]',
      '  protect = true',
      '  after = [conf]',
      '  manage = observe',
      '  content = template("vhost.conf.tmpl", { names = [a for a in aliases] })',
      '}',
    ].join('\n')
  );
  assertScope(t, 1, 'for', 'keyword.control');
  assertScope(t, 1, 'in', 'keyword.control');
  assertScope(t, 1, 'if', 'keyword.control');
  assertScope(t, 2, 'for', 'keyword.control');
  assertScope(t, 2, 'k', 'meta.interpolation');
  assertScope(t, 4, 'notify', 'variable.language.meta-attribute');
  assertScope(t, 5, 'protect', 'variable.language.meta-attribute');
  assertScope(t, 6, 'after', 'variable.language.meta-attribute');
  assertScope(t, 7, 'observe', 'constant.language.enum');
  assertScope(t, 8, 'template', 'support.function.builtin');
  assertScope(t, 8, 'for', 'keyword.control');
  assertBaseState(t, 'snippet');
});
