// Pages by URL. The hash history (`#/projects/...`) needs no server rewrite, so the console works
// from any folder of a bucket. Every page but sign-in loads on demand, keeping the first page small.
import { createRouter, createWebHashHistory } from "vue-router";
import { currentUser, session } from "./api.js";
import SignIn from "./pages/SignIn.vue";

const routes = [
  { path: "/", redirect: "/projects" },
  { path: "/signin", component: SignIn, meta: { title: "Sign in", anonymous: true } },
  { path: "/signup", component: () => import("./pages/SignUp.vue"), meta: { title: "Sign up", anonymous: true } },
  { path: "/forgot", component: () => import("./pages/ForgotPassword.vue"),
    meta: { title: "Forgotten password", anonymous: true } },
  { path: "/reset/:token", component: () => import("./pages/ResetPassword.vue"), props: true,
    meta: { title: "New password", anonymous: true } },
  { path: "/projects", component: () => import("./pages/Projects.vue"), meta: { title: "Projects" } },
  { path: "/projects/:id/:tab?", component: () => import("./pages/Project.vue"), props: true,
    meta: { title: "Project" } },
  { path: "/organizations", component: () => import("./pages/Organizations.vue"),
    meta: { title: "Organizations" } },
  { path: "/organizations/:name", component: () => import("./pages/Organization.vue"), props: true,
    meta: { title: "Organization" } },
  { path: "/account", component: () => import("./pages/Account.vue"), meta: { title: "Account" } },
  { path: "/users", component: () => import("./pages/Users.vue"), meta: { title: "Users", staff: true } },
  { path: "/:rest(.*)*", redirect: "/projects" },
];

export const router = createRouter({ history: createWebHashHistory(), routes });

router.beforeEach(async (to) => {
  if (to.meta.anonymous) return true;
  if (!session.token) return { path: "/signin", query: to.fullPath !== "/projects" ? { next: to.fullPath } : {} };
  try {
    const user = await currentUser();
    if (to.meta.staff && !user.is_staff) return "/projects";
  } catch {
    if (!session.token) return { path: "/signin", query: { next: to.fullPath } };
  }
  return true;
});

router.afterEach((to) => {
  document.title = `${to.meta.title || "Console"} · QFieldCloud`;
});
