import { ref } from "vue";

// What the forms of a page share: the line that says how its last action went, and the page read
// again after one succeeded (`after`), so that what it shows is what the server now holds.
export function useActions(after = async () => {}) {
  const error = ref("");
  const notice = ref("");

  async function act(work, done) {
    error.value = "";
    notice.value = "";
    try {
      await work();
      notice.value = done;
      await after();
    } catch (failure) {
      error.value = failure.message;
    }
  }

  return { error, notice, act };
}
