// Entry of the signing worker: registers the transfer rules and exposes the API, nothing else.
import * as Comlink from 'comlink';
import { registerTransferHandlers } from '../transfer.ts';
import { createSigningWorkerApi } from './api.ts';

registerTransferHandlers();
Comlink.expose(createSigningWorkerApi());
