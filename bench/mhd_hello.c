/*
 * mhd_hello.c - the ceiling: a bare libmicrohttpd server that answers every
 * request with the seed's /tasks body, in the same threading mode as
 * taskpoold (epoll, an internal thread pool) and nothing else.  taskpoold
 * can only be slower; bench/run reports by how much.
 *
 * usage: mhd_hello PORT [THREADS [CONNECTION_MEMORY]]
 *
 * CONNECTION_MEMORY defaults to bench/taskpoold.conf's 8K: libmicrohttpd
 * clears that pool on every request, so the two must match for the ceiling
 * to be a fair one.
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char BODY[] = "{\"results\": [\"Task 1 done\", \"Task 2 done\"]}";

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url,
       const char *method, const char *version, const char *upload_data,
       size_t *upload_data_size, void **con_cls)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void)cls; (void)url; (void)method; (void)version; (void)upload_data;
	if (*con_cls == NULL) {		/* first call: headers only */
		*con_cls = conn;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	resp = MHD_create_response_from_buffer(sizeof(BODY) - 1,
					       (void *)BODY,
					       MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/json");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
	size_t memory = argc > 3 ? (size_t)atol(argv[3]) : 8192;
	sigset_t sigs;
	int sig;

	if (argc < 2) {
		fprintf(stderr, "usage: mhd_hello PORT [THREADS [MEMORY]]\n");
		return 64;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO,
			     (uint16_t)atoi(argv[1]), NULL, NULL, answer, NULL,
			     MHD_OPTION_THREAD_POOL_SIZE, threads,
			     MHD_OPTION_CONNECTION_LIMIT, 19000u,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory,
			     MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
			     MHD_OPTION_END);
	if (d == NULL) {
		perror("MHD_start_daemon");
		return 1;
	}
	sigwait(&sigs, &sig);
	MHD_stop_daemon(d);
	return 0;
}
