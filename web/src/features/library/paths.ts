export const albumPath = (id: string) => `/albums/${encodeURIComponent(id)}`;
export const artistPath = (name: string) => `/artists/${encodeURIComponent(name)}`;
