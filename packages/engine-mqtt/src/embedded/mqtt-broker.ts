import { createServer, type Server, type Socket } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { ArteriaError, Lifecycle, MAX_PAYLOAD_BYTES, deviceTopic, encodePayload, parseDeviceTopic, toArteriaError, type DeviceAddress, type LifecycleState, type ParsedTopic } from '@arteria/protocol';
import { authenticate, checkClientId, revocationOf, type ResultPublisher, type Identity, type Secrets, type SecurityEvent, type SecurityEventSink, closeServer, listen, urlHost } from '@arteria/ports';
import { guardedConnection } from './packet-guard.js';
import { createBrokerTlsServer, peerCertificate, type BrokerTlsOptions, type PeerCertificate } from './broker-tls.js';

export interface BrokerHooks {
  /**
   * A device published on its own requests topic. The device's PUBACK is sent only when
   * this resolves, so resolve only once the request is durably enqueued (or answered
   * with a rejection). Rejecting withholds the PUBACK: the device resends.
   */
  onRequest(topic: ParsedTopic, payload: Buffer): Promise<void>;
  /** A device tried to speak for another device, or on a topic it may not use. */
  onRefused(sender: DeviceAddress, error: ArteriaError): void;
  /** A device published its status (heartbeat, in-procedure flag) or its configuration report (topic kind `config/reported`). */
  onStatus?(topic: ParsedTopic, payload: Buffer): void;
  /** A broker-level problem worth an operator's attention. */
  onError?(error: Error): void;
  /** A refused login, client id, publish or subscription (see SecurityEvent). */
  onSecurityEvent?: SecurityEventSink;
}

export interface BrokerOptions {
  host: string;
  port: number;
  secrets: Secrets;
  hooks: BrokerHooks;
  /** Largest MQTT packet taken (default: the protocol's largest payload plus 8 KiB for topic and header). */
  maxPacketBytes?: number;
  /** A second listener with TLS, where devices prove their identity with a certificate from Arteria's CA. */
  tls?: BrokerTlsOptions;
}

/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1). Enforces the topic policy a cluster
 * broker enforces with ACLs: a device publishes only its own requests, status and
 * reported config, and subscribes only to its own results and config. Requests are never
 * forwarded to other subscribers: ingest consumes them inside the publish path.
 */
export class EmbeddedBroker {
  #aedes: Aedes | undefined;
  #server: Server | undefined;
  #tlsServer: Server | undefined;
  #host = '127.0.0.1';
  #port = 0;
  #tlsHost = '127.0.0.1';
  #tlsPort = 0;
  readonly #identities = new WeakMap<Client, Identity>();
  readonly #life = new Lifecycle('the embedded broker');
  /** What each TLS connection's handshake proved, by the stream aedes reads. */
  readonly #peers = new WeakMap<object, PeerCertificate>();

  /** Where this process reaches the broker: the configured host (loopback for a wildcard address). */
  get url(): string {
    return `mqtt://${this.#host}:${this.#port}`;
  }

  /** The TLS listener's URL (mqtts), when there is one. */
  get tlsUrl(): string | undefined {
    return this.#tlsServer === undefined ? undefined : `mqtts://${this.#tlsHost}:${this.#tlsPort}`;
  }

  get connectedClients(): number {
    return this.#aedes?.connectedClients ?? 0;
  }

  /**
   * A result publisher inside the broker: results go to the device's subscription (QoS 1,
   * kept for an offline persistent session) without a client connection. It exists before
   * the broker starts, so ingest and workers are built with it and the broker is started
   * with ingest; it publishes only while the broker runs (ILLEGAL_STATE otherwise).
   */
  publisher(): ResultPublisher {
    let closed = false;
    const send = (topic: string, payload: Buffer): Promise<void> =>
      new Promise((resolve, reject) => {
        const aedes = this.#aedes;
        if (closed) {
          reject(new ArteriaError('ILLEGAL_STATE', 'result publisher is closed: cannot publish'));
          return;
        }
        if (aedes === undefined || aedes.closed) {
          reject(new ArteriaError('ILLEGAL_STATE', 'embedded broker is not running: cannot publish a result'));
          return;
        }
        aedes.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, (err) => (err ? reject(toArteriaError(err, 'INTERNAL')) : resolve()));
      });
    return {
      publish: (result) => send(deviceTopic(result, 'results'), encodePayload(result)),
      publishProbeAnswer: (answer) => send(deviceTopic(answer, 'results'), encodePayload(answer)),
      publishGrant: (answer) => send(deviceTopic(answer, 'results'), encodePayload(answer)),
      publishPartial: (partial) => send(deviceTopic(partial, 'results'), encodePayload(partial)),
      close: () => {
        closed = true;
        return Promise.resolve();
      },
    };
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  /** Starts once (ILLEGAL_STATE after); a start that fails closes what it opened. */
  start(options: BrokerOptions): Promise<void> {
    return this.#life.start(async () => {
      this.#life.defer('listeners and broker', () => this.#closeAll());
      await this.#start(options);
    });
  }

  async #start(options: BrokerOptions): Promise<void> {
    const { hooks, secrets } = options;
    const security = (event: SecurityEvent): void => hooks.onSecurityEvent?.(event);
    const denied = (client: Client, identity: Identity, topic: string, reason: string): void =>
      security({ event: 'acl_denied', identity: identityName(identity), authenticated: true, clientId: client.id, address: remoteAddress(client), reason, topic });
    // A device revoked while connected is cut off at its next publish or subscribe.
    const cutOff = (client: Client, identity: Identity & { kind: 'device' }, topic: string): boolean => {
      const revoked = revocationOf(secrets, identity);
      if (revoked === undefined) return false;
      security({ event: 'credential_revoked', identity: identityName(identity), authenticated: true, clientId: client.id, address: remoteAddress(client), reason: revoked.reason, code: revoked.code, topic });
      client.close();
      return true;
    };
    const aedes = await Aedes.createBroker({
      maxClientsIdLength: 160,
      drainTimeout: 30_000,
      concurrency: 1000,
      authenticate: (client, username, password, done) => {
        const refuse = (event: SecurityEvent, returnCode: AuthenticateError['returnCode']): void => {
          security(event);
          done(Object.assign(new Error(event.reason), { returnCode }), false);
        };
        const peer = this.#peers.get(client.conn);
        let identity: Identity;
        if (peer?.kind === 'refused') {
          refuse({ event: peer.revoked ? 'credential_revoked' : 'login_refused', identity: peer.subject, authenticated: false, clientId: client.id, address: remoteAddress(client), reason: peer.reason }, 5);
          return;
        } else if (peer?.kind === 'device') {
          // The certificate is the credential; a username, if sent, must name the same device.
          identity = peer.identity;
          const device = identityName(peer.identity);
          if (username !== undefined && username !== '' && username !== device) {
            refuse({ event: 'login_refused', identity: device, authenticated: true, clientId: client.id, address: remoteAddress(client), reason: `username ${JSON.stringify(username)} is not the certificate's device` }, 5);
            return;
          }
          // The revocation list covers every credential of a device, certificates too.
          const revoked = revocationOf(secrets, peer.identity);
          if (revoked !== undefined) {
            refuse({ event: 'credential_revoked', identity: device, authenticated: false, clientId: client.id, address: remoteAddress(client), reason: revoked.reason, code: revoked.code }, 5);
            return;
          }
        } else {
          const auth = authenticate(secrets, username, password);
          if (!auth.ok) {
            const revoked = auth.code === 'DEVICE_REVOKED';
            refuse({ event: revoked ? 'credential_revoked' : 'login_refused', identity: auth.claimed, authenticated: false, clientId: client.id, address: remoteAddress(client), reason: auth.reason, code: auth.code }, revoked ? 5 : 4);
            return;
          }
          identity = auth.identity;
          // On a listener that requires certificates, only platform services log in with a token.
          if (peer?.kind === 'none' && options.tls?.requireCertificate === true && identity.kind !== 'service') {
            refuse({ event: 'login_refused', identity: username ?? '', authenticated: false, clientId: client.id, address: remoteAddress(client), reason: 'no client certificate' }, 5);
            return;
          }
        }
        // Checked before aedes looks the session up: a refused client never resumes it nor
        // disconnects the client holding it.
        const refusal = checkClientId(identity, client.id, client.clean);
        if (refusal !== undefined) {
          refuse({ event: 'client_id_refused', identity: identityName(identity), authenticated: true, clientId: client.id, address: remoteAddress(client), reason: refusal.reason }, refusal.returnCode);
          return;
        }
        this.#identities.set(client, identity);
        done(null, true);
      },
      authorizePublish: (client, packet, done) => {
        if (client === null) return done(null); // a last will published after its client left
        const identity = this.#identities.get(client);
        if (identity?.kind === 'service') return done(null);
        if (identity === undefined) return done(new Error('unauthenticated'));
        if (cutOff(client, identity, packet.topic)) return done(new Error('device revoked'));
        const sender = { tenant: identity.tenant, device: identity.device };
        let topic: ParsedTopic;
        try {
          topic = parseDeviceTopic(packet.topic);
        } catch (err) {
          denied(client, identity, packet.topic, 'not a device topic');
          hooks.onRefused(sender, err instanceof ArteriaError ? err : new ArteriaError('INVALID_TOPIC', String(err)));
          return done(new Error(`invalid topic ${packet.topic}`));
        }
        const own = topic.tenant === sender.tenant && topic.device === sender.device;
        if (topic.kind === 'requests') {
          if (!own) {
            denied(client, identity, packet.topic, 'requests of another device');
            // Requests are never forwarded, so the publish can be acknowledged and dropped.
            hooks.onRefused(sender, new ArteriaError('NOT_AUTHORIZED', `device ${sender.tenant}/${sender.device} may not publish requests for ${topic.tenant}/${topic.device}`));
            return done(null);
          }
          const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
          hooks.onRequest(topic, payload).then(
            () => done(null),
            (err: unknown) => {
              hooks.onError?.(err instanceof Error ? err : new Error(String(err)));
              done(new Error('request not accepted; resend'));
            },
          );
          return;
        }
        if (own && (topic.kind === 'status' || topic.kind === 'config/reported')) {
          hooks.onStatus?.(topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
          return done(null);
        }
        denied(client, identity, packet.topic, 'publish outside the device\'s own topics');
        hooks.onRefused(sender, new ArteriaError('NOT_AUTHORIZED', `device ${sender.tenant}/${sender.device} may not publish on ${packet.topic}`));
        return done(new Error(`not authorized to publish on ${packet.topic}`));
      },
      authorizeSubscribe: (client, subscription, done) => {
        const identity = this.#identities.get(client);
        if (identity?.kind === 'service') return done(null, subscription);
        if (identity === undefined || cutOff(client, identity, subscription.topic)) return done(null, null);
        const prefix = `arteria/v1/${identity.tenant}/${identity.device}/`;
        const allowed = subscription.topic === `${prefix}results` || subscription.topic === `${prefix}config`;
        if (!allowed) denied(client, identity, subscription.topic, 'subscription outside the device\'s own topics');
        return done(null, allowed ? subscription : null);
      },
      authorizeForward: (client, packet) => {
        if (packet.topic.endsWith('/requests') && this.#identities.get(client)?.kind !== 'service') return null;
        return packet;
      },
    });
    // A connection refused in its CONNACK (an MQTT version this broker does not speak, a
    // refused login) is the client's to fix and was told to it: the version is a normal
    // step of a gateway's negotiation, and refused logins are security events already.
    const brokerError = (err: Error): void => {
      if (!isConnackRefusal(err)) hooks.onError?.(err);
    };
    aedes.on('clientError', (_client, err) => brokerError(err));
    aedes.on('connectionError', (_client, err) => brokerError(err));
    const maxPacketBytes = options.maxPacketBytes ?? MAX_PAYLOAD_BYTES + 8192;
    const server = createServer((socket: Socket) => {
      socket.setNoDelay(true);
      const address = `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
      const refused = (declared: number): void =>
        security({ event: 'packet_refused', identity: '', authenticated: false, clientId: '', address, reason: `a packet of ${declared} bytes declared; the limit is ${maxPacketBytes}` });
      aedes.handle(guardedConnection(socket, maxPacketBytes, refused));
    });
    this.#aedes = aedes;
    this.#port = await listen(server, options.port, options.host, '--mqtt-port');
    this.#host = urlHost(options.host);
    this.#server = server;
    if (options.tls !== undefined) {
      const tlsServer = createBrokerTlsServer(options.tls, (socket) => {
        socket.setNoDelay(true);
        const address = `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
        const stream = guardedConnection(socket, maxPacketBytes, (declared) =>
          security({ event: 'packet_refused', identity: '', authenticated: false, clientId: '', address, reason: `a packet of ${declared} bytes declared; the limit is ${maxPacketBytes}` }),
        );
        this.#peers.set(stream, peerCertificate(socket));
        aedes.handle(stream);
      });
      tlsServer.on('tlsClientError', (err) => hooks.onError?.(err));
      this.#tlsPort = await listen(tlsServer, options.tls.port, options.tls.host, '--mqtts-port');
      this.#tlsHost = urlHost(options.tls.host);
      this.#tlsServer = tlsServer;
    }
  }

  /** Closes the broker (its clients' connections too) and its listeners; memoised. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #closeAll(): Promise<void> {
    const server = this.#server;
    const tlsServer = this.#tlsServer;
    const aedes = this.#aedes;
    this.#tlsServer = undefined;
    this.#server = undefined;
    this.#aedes = undefined;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    if (server) await closeServer(server);
    if (tlsServer) await closeServer(tlsServer);
  }
}

const identityName = (identity: Identity): string => (identity.kind === 'device' ? `${identity.tenant}/${identity.device}` : `service:${identity.name}`);

/** `address:port` of the client's connection (TLS sockets are net sockets too). */
function remoteAddress(client: Client): string {
  const socket = client.conn as Partial<Socket>;
  return socket.remoteAddress === undefined ? 'unknown' : `${socket.remoteAddress}:${socket.remotePort ?? 0}`;
}

/** aedes reports a connection it refused in the CONNACK with the return code it sent (1-6). */
function isConnackRefusal(err: Error): boolean {
  const code = (err as Error & { errorCode?: unknown }).errorCode;
  return typeof code === 'number' && code > 0;
}
