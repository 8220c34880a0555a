// Uploads through the presigned flow (docs/api.md, "Presigned upload flow"; the same steps as
// `qfc-transfer upload`): the bytes go from the browser straight to S3 in 8 MiB parts, a few at a
// time, so a file of any size works on AWS, where a request to the API carries at most 4.4 MB.
import { ApiError, filePath, get, post, request } from "./api.js";

const PARALLEL = 3;
const PART_RETRIES = 3;

function putPart(url, blob, onProgress) {
  // XMLHttpRequest, not fetch: only it reports the progress of a request body.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new Error(`S3 answered ${xhr.status}`)));
    xhr.onerror = () => reject(new Error("The part could not be sent."));
    xhr.send(blob);
  });
}

async function complete(projectId, uploadId) {
  // Completing a large file can outlast the gateway (504) or meet a completion already running
  // (409): ask again until it is done; 404 means it finished meanwhile and the session is gone.
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await post(`uploads/${projectId}/${uploadId}/complete/`, {});
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && attempt > 0) return null;
      if (!(error instanceof ApiError) || ![409, 502, 503, 504].includes(error.status) || attempt > 60) throw error;
      await new Promise((done) => setTimeout(done, Math.min(1000 * 2 ** attempt, 10000)));
    }
  }
}

// Uploads `file` as `name` into the project; `onProgress(sentBytes, totalBytes)` as it goes.
export async function uploadFile(projectId, file, name, onProgress) {
  if (file.size === 0) {
    // The presigned flow needs at least one byte; an empty file fits any request.
    const form = new FormData();
    form.append("file", file, name);
    const reply = await request("POST", `files/${projectId}/${filePath(name)}/`, { form });
    onProgress(0, 0);
    return reply.data;
  }
  const session = await post(`uploads/${projectId}/`, { name, size: file.size });
  const sent = new Map();
  const report = () => onProgress([...sent.values()].reduce((a, b) => a + b, 0), file.size);
  const queue = [...session.parts];
  async function worker() {
    while (queue.length) {
      const part = queue.shift();
      const start = (part.part_number - 1) * session.part_size;
      const blob = file.slice(start, start + part.size);
      for (let attempt = 1; ; attempt += 1) {
        try {
          await putPart(part.url, blob, (loaded) => { sent.set(part.part_number, loaded); report(); });
          sent.set(part.part_number, part.size);
          report();
          break;
        } catch (error) {
          sent.set(part.part_number, 0);
          if (attempt >= PART_RETRIES) throw error;
          // Presigned URLs last 10 minutes: a part that failed gets a fresh one.
          const state = await get(`uploads/${projectId}/${session.upload_id}/`);
          const fresh = state.parts.find((p) => p.part_number === part.part_number);
          if (!fresh) break; // S3 has it after all
          part.url = fresh.url;
        }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL, queue.length) }, worker));
  return complete(projectId, session.upload_id);
}
