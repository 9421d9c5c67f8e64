// Entry of the HE worker: registers the transfer rules and exposes the API, nothing else.
import * as Comlink from 'comlink';
import { registerTransferHandlers } from '../transfer.ts';
import { createHeWorkerApi } from './api.ts';

registerTransferHandlers();
Comlink.expose(createHeWorkerApi());
