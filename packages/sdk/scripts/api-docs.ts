// packages/sdk/API.md from the built, bundled declarations (dist/index.d.mts): `npm run docs:sdk`
// (builds, then runs this). test/package.unit.test.ts fails when the committed file differs.
//
// Uses the TypeScript 5 compiler API (`typescript5`, an npm alias devDependency of this workspace
// only): the repo's TypeScript 7 is the native compiler and has no stable JS API yet. The checker
// expands the contracts' TypeBox-derived types (`Static<typeof Customer>`) into plain object types,
// so the reference shows the fields, not TypeBox internals. The Markdown goes through Biome (the
// repo's formatter, which also formats the code blocks) so `biome ci` and the staleness test agree.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript5';

const sdkDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = path.resolve(sdkDir, '..', '..');

const typeFlags =
  ts.NodeBuilderFlags.NoTruncation |
  ts.NodeBuilderFlags.InTypeAlias |
  ts.NodeBuilderFlags.MultilineObjectLiterals |
  ts.NodeBuilderFlags.UseSingleQuotesForStringLiteralType;

function docOf(symbol: ts.Symbol, checker: ts.TypeChecker): string {
  const text = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
  const tags = symbol
    .getJsDocTags(checker)
    .map((t) => `@${t.name} ${ts.displayPartsToString(t.text ?? [])}`.trim())
    .join('\n');
  return [text, tags].filter(Boolean).join('\n\n');
}

function jsDocBlock(doc: string, indent: string): string {
  if (!doc) return '';
  const lines = doc.split('\n');
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} *${l ? ` ${l}` : ''}`).join('\n')}\n${indent} */\n`;
}

/**
 * TypeBox's Static<> of an object schema comes out with its fields in the checker's order; put the
 * top-level fields back in the order the schema declares them (`Static<typeof X>`: X's `properties`).
 */
function inSchemaOrder(node: ts.TypeNode, decl: ts.TypeAliasDeclaration, checker: ts.TypeChecker): ts.TypeNode {
  const ref = decl.type;
  if (!ts.isTypeLiteralNode(node) || !ts.isTypeReferenceNode(ref)) return node;
  const query = ref.typeArguments?.[0];
  if (!query || !ts.isTypeQueryNode(query)) return node;
  const schema = checker.getSymbolAtLocation(query.exprName);
  const properties = schema && checker.getTypeOfSymbol(schema).getProperty('properties');
  if (!properties) return node;
  const order = checker.getPropertiesOfType(checker.getTypeOfSymbol(properties)).map((p) => p.name);
  const rank = (m: ts.TypeElement) => {
    const i = m.name && (ts.isIdentifier(m.name) || ts.isStringLiteral(m.name)) ? order.indexOf(m.name.text) : -1;
    return i < 0 ? order.length : i;
  };
  return ts.factory.updateTypeLiteralNode(node, ts.factory.createNodeArray([...node.members].sort((a, b) => rank(a) - rank(b))));
}

/** Renders the reference for a bundled declaration file; pure apart from running Biome's formatter. */
export function renderApiMarkdown(dtsFile: string): string {
  const program = ts.createProgram([dtsFile], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts'], // no DOM: only the contracts' types are expanded, the rest is printed as declared
    types: [],
  });
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(dtsFile);
  if (!sf) throw new Error(`cannot read ${dtsFile}`);
  const moduleSymbol = checker.getSymbolAtLocation(sf);
  if (!moduleSymbol) throw new Error(`${dtsFile} is not a module`);
  const printer = ts.createPrinter({ removeComments: false });

  const classes: string[] = [];
  const functions: string[] = [];
  const constants: string[] = [];
  const types: string[] = [];
  const toc: Record<string, string[]> = { Classes: [], Functions: [], Constants: [], Types: [] };

  const exports = checker.getExportsOfModule(moduleSymbol).sort((a, b) => a.name.localeCompare(b.name));
  for (const exported of exports) {
    const name = exported.name;
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const doc = docOf(symbol, checker);
    const lead = doc ? `${doc}\n\n` : '';

    if (symbol.flags & ts.SymbolFlags.Class) {
      const decl = symbol.declarations?.find(ts.isClassDeclaration);
      if (!decl) continue;
      const heritage = decl.heritageClauses?.map((h) => ` ${h.getText(sf)}`).join('') ?? '';
      const members: string[] = [];
      for (const m of decl.members) {
        const mods = ts.getCombinedModifierFlags(m as ts.Declaration);
        if (mods & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
        if (m.name && ts.isPrivateIdentifier(m.name)) continue;
        const memberSymbol = m.name ? checker.getSymbolAtLocation(m.name) : undefined;
        const memberDoc = memberSymbol ? docOf(memberSymbol, checker) : '';
        const text = m
          .getText(sf)
          .replace(/^\/\*\*[\s\S]*?\*\/\s*/, '')
          .replace(/\s*\n\s*/g, ' ');
        members.push(`${jsDocBlock(memberDoc, '  ')}  ${text}`);
      }
      classes.push(`### \`${name}\`\n\n${lead}\`\`\`ts\ndeclare class ${name}${heritage} {\n${members.join('\n')}\n}\n\`\`\`\n`);
      toc.Classes!.push(name);
    } else if (symbol.flags & ts.SymbolFlags.Function) {
      const sigs = checker.getSignaturesOfType(checker.getTypeOfSymbol(symbol), ts.SignatureKind.Call);
      const text = sigs
        .map((s) => `declare function ${name}${checker.signatureToString(s, undefined, ts.TypeFormatFlags.NoTruncation)};`)
        .join('\n');
      functions.push(`### \`${name}\`\n\n${lead}\`\`\`ts\n${text}\n\`\`\`\n`);
      toc.Functions!.push(name);
    } else if (symbol.flags & (ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Interface)) {
      const decl = symbol.declarations?.find((d) => ts.isTypeAliasDeclaration(d) || ts.isInterfaceDeclaration(d));
      if (!decl) continue;
      let text: string;
      if (ts.isTypeAliasDeclaration(decl) && /\bStatic<|\btypeof\b/.test(decl.type.getText(sf))) {
        // A contracts type: expand the TypeBox Static<> into the object type it stands for.
        let node = checker.typeToTypeNode(checker.getTypeAtLocation(decl.name), decl, typeFlags);
        if (!node) throw new Error(`cannot expand ${name}`);
        node = inSchemaOrder(node, decl, checker);
        const params = decl.typeParameters ? `<${decl.typeParameters.map((p) => p.getText(sf)).join(', ')}>` : '';
        text = `type ${name}${params} = ${printer.printNode(ts.EmitHint.Unspecified, node, sf)};`;
      } else {
        text = decl
          .getText(sf)
          .replace(/^\/\*\*[\s\S]*?\*\/\s*/, '')
          .replace(/^export\s+/, '')
          .replace(/^declare\s+/, '');
      }
      types.push(`### \`${name}\`\n\n${lead}\`\`\`ts\n${text}\n\`\`\`\n`);
      toc.Types!.push(name);
    } else if (symbol.flags & ts.SymbolFlags.Variable) {
      const type = checker.typeToString(checker.getTypeOfSymbol(symbol), undefined, ts.TypeFormatFlags.NoTruncation);
      constants.push(`### \`${name}\`\n\n${lead}\`\`\`ts\ndeclare const ${name}: ${type};\n\`\`\`\n`);
      toc.Constants!.push(name);
    }
  }

  const contents = Object.entries(toc)
    .filter(([, names]) => names.length > 0)
    .map(([section, names]) => `- ${section}\n${names.map((n) => `  - [\`${n}\`](#${n.toLowerCase()})`).join('\n')}`)
    .join('\n');
  const section = (title: string, parts: string[]) => (parts.length ? `## ${title}\n\n${parts.join('\n')}` : '');
  const markdown = [
    '# @meterline/sdk API reference',
    'Generated from the built declarations (`dist/index.d.mts`) by `npm run docs:sdk`: do not edit by hand ' +
      '(a test fails when this file is stale). Request and response bodies are the services’ snake_case JSON; ' +
      'their types are the contracts’ schemas, expanded here into their fields. The guide is README.md.',
    contents,
    section('Classes', classes),
    section('Functions', functions),
    section('Constants', constants),
    section('Types', types),
  ]
    .filter(Boolean)
    .join('\n\n');

  const biome = path.join(repoRoot, 'node_modules', '.bin', 'biome');
  return execFileSync(biome, ['format', '--stdin-file-path=packages/sdk/API.md'], {
    cwd: repoRoot,
    input: `${markdown}\n`,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = path.join(sdkDir, 'API.md');
  writeFileSync(out, renderApiMarkdown(path.join(sdkDir, 'dist', 'index.d.mts')));
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}
