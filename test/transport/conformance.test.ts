/** The ByteStream contract, run against both socket transports (see _conformance.ts). */
import { TcpTransport } from '../../src/transport/tcp.ts';
import { WebSocketTransport } from '../../src/transport/ws.ts';
import { conformance } from './_conformance.ts';

conformance('tcp', () => new TcpTransport());
conformance('ws', () => new WebSocketTransport());
