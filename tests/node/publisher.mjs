// A system that is not scopenet drives it over NATS using only proto/ (the JSON Schemas and
// index of subjects): it creates a network and a subnet from a pool, receives the resulting
// events from JetStream and decodes them with npm's CloudEvents SDK (binary mode: the ce-*
// headers), and sends a malformed command to see the error reply. It prints one JSON summary.
import { HTTP } from "cloudevents";
import { connect, DeliverPolicy, JSONCodec, StringCodec } from "nats";
import { readFileSync } from "node:fs";

const [natsUrl, poolId, projectId, protoDir] = process.argv.slice(2);
const index = JSON.parse(readFileSync(`${protoDir}/index.json`, "utf8"));
const subject = (tail) => {
  const hit = index.commands.find((c) => c.subject.endsWith(`.${tail}`));
  if (!hit) throw new Error(`no subject ending in ${tail} in proto/index.json`);
  return hit.subject;
};
const jc = JSONCodec();
const sc = StringCodec();
const context = { project_id: projectId, roles: ["member"] };

// nats.js takes credentials as options, not from the URL (nats://user:password@host:port)
const url = new URL(natsUrl.replace(/^nats:/, "http:"));
const auth = url.username
  ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
  : {};
const nc = await connect({ servers: `${url.hostname}:${url.port}`, name: "node-publisher", ...auth });
// The events, read from the stream (an ordered consumer from now on), each decoded twice: as
// scopenet's JSON body and, from its headers, as a CloudEvent by the SDK (which validates it).
const headersOf = (m) => Object.fromEntries((m.headers?.keys() ?? []).map((k) => [k, m.headers.get(k)]));
const events = [];
const consumer = await nc.jetstream().consumers.get(index.events_stream, {
  filterSubjects: ["scopenet.v1.evt.>"],
  deliver_policy: DeliverPolicy.New,
});
const stream = await consumer.consume();
(async () => {
  for await (const m of stream) {
    const headers = headersOf(m);
    let cloudevent;
    try {
      const ce = HTTP.toEvent({ headers, body: sc.decode(m.data) });
      cloudevent = { valid: ce.validate(), ...ce.toJSON() };
    } catch (e) {
      cloudevent = { valid: false, error: String(e), errors: e.errors ?? null };
    }
    events.push({ subject: m.subject, body: jc.decode(m.data), msgId: headers["Nats-Msg-Id"], cloudevent });
  }
})();

async function call(tail, body) {
  const reply = await nc.request(subject(tail), jc.encode(body), { timeout: 10000 });
  const code = reply.headers?.get("Nats-Service-Error-Code");
  return { code: code ? Number(code) : 200, body: jc.decode(reply.data) };
}

const network = await call("topology.network.create", { context, network: { name: "from-node" } });
const netId = network.body.network?.id;
const subnet = await call("topology.subnet.create", {
  context,
  subnet: { network_id: netId, ip_version: 4, subnetpool_id: poolId, name: "node-subnet" },
});
const subnetId = subnet.body.subnet?.id;

// malformed: an attribute no schema has, and bytes that are not JSON at all
const unknownField = await call("topology.network.create", { context, network: { name: "x", colour: "red" } });
const raw = await nc.request(subject("topology.network.create"), sc.encode("{not json"), { timeout: 10000 });
const notJson = { code: Number(raw.headers?.get("Nats-Service-Error-Code")), body: jc.decode(raw.data) };

const deadline = Date.now() + 10000;
const seen = () => ({
  network: events.some((e) => e.subject.endsWith("network.created") && e.body.resource?.id === netId),
  subnet: events.some((e) => e.subject.endsWith("subnet.created") && e.body.resource?.id === subnetId),
});
while (Date.now() < deadline && !(seen().network && seen().subnet)) await new Promise((r) => setTimeout(r, 50));

const cloudevent = (tail, id) => {
  const e = events.find((e) => e.subject.endsWith(tail) && e.body.resource?.id === id);
  return e ? { ...e.cloudevent, nats_msg_id: e.msgId, body_id: e.body.id } : null;
};

console.log(JSON.stringify({
  network: { code: network.code, id: netId, ipv4_address_scope: network.body.network?.ipv4_address_scope ?? null },
  subnet: { code: subnet.code, id: subnetId, cidr: subnet.body.subnet?.cidr, pool: subnet.body.subnet?.subnetpool_id },
  events: seen(),
  event_subjects: [...new Set(events.map((e) => e.subject))].sort(),
  unknown_field: { code: unknownField.code, error: unknownField.body.error },
  not_json: notJson,
  cloudevents: {
    network: cloudevent(".evt.network.created", netId),
    subnet: cloudevent(".evt.subnet.created", subnetId),
  },
}));
stream.stop();
await nc.drain();
