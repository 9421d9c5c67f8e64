// Entry of the audit worker: registers the transfer rules and exposes the API, nothing else.
import * as Comlink from 'comlink';
import { registerTransferHandlers } from '../transfer.ts';
import { createAuditWorkerApi } from './api.ts';

registerTransferHandlers();
Comlink.expose(createAuditWorkerApi());
