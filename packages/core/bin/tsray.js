#!/usr/bin/env node
// The `tsray` command; the implementation is compiled to dist/cli/main.js.
require("../dist/cli/main.js");
