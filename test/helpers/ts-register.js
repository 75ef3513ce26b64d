// A require hook that runs the TypeScript sources directly (transpiled on load, no type check), for tests that
// start a child process on lib/ without a build:  node -r ./test/helpers/ts-register.js -e "require('./lib/...')"
'use strict';
const fs = require('fs');
const ts = require('typescript');

const options = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false };
require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), { compilerOptions: options, fileName: filename });
  module._compile(outputText, filename);
};
