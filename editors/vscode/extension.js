// Client side of the iade extension: starts `iade lsp` over stdio and
// connects it to every `.iade` document.
'use strict';

const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

/** @type {LanguageClient | undefined} */
let client;

function serverPath() {
  const configured = vscode.workspace.getConfiguration('iade').get('server.path');
  return typeof configured === 'string' && configured.trim() !== '' ? configured.trim() : 'iade';
}

function createClient() {
  const command = serverPath();
  const serverOptions = {
    run: { command, args: ['lsp'], transport: TransportKind.stdio },
    debug: { command, args: ['lsp'], transport: TransportKind.stdio },
  };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'iade' },
      { scheme: 'untitled', language: 'iade' },
    ],
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher('**/*.iade'),
    },
  };
  return new LanguageClient('iade', 'iade language server', serverOptions, clientOptions);
}

async function start() {
  client = createClient();
  try {
    await client.start();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    vscode.window.showErrorMessage(
      `iade: could not start the language server (${serverPath()} lsp): ${message}. ` +
        'Set "iade.server.path" to the iade binary.'
    );
  }
}

async function stop() {
  if (!client) {
    return;
  }
  const running = client;
  client = undefined;
  try {
    await running.stop();
  } catch (_err) {
    // The server may already have exited; nothing left to stop.
  }
}

async function restart() {
  await stop();
  await start();
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('iade.restartServer', restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('iade.server.path')) {
        restart();
      }
    })
  );
  await start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
