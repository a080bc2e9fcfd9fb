/** Self-signed certificate for testing TLS (selfsigned package). */
import selfsigned from 'selfsigned';

export async function makeSelfSigned(cn: string): Promise<{ cert: string; key: string }> {
  const attrs = [{ name: 'commonName', value: cn }];
  const opts = {
    keySize: 2048,
    days: 825,
    algorithm: 'sha256',
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: cn },
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  };
  const pems = await (
    selfsigned as unknown as {
      generate: (
        a: unknown,
        o: unknown,
      ) => Promise<{ cert: string; private: string }> | { cert: string; private: string };
    }
  ).generate(attrs, opts);
  return { cert: pems.cert, key: pems.private };
}
