// Entry of the eval worker: registers the transfer rules and exposes the API, nothing else.
import * as Comlink from 'comlink';
import { registerTransferHandlers } from '../transfer.ts';
import { createEvalWorkerApi } from './api.ts';

registerTransferHandlers();
Comlink.expose(createEvalWorkerApi());
