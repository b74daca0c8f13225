/* blackhole: a loopback TCP port whose connects never complete, for testing
 * connect timeouts. It listens with the smallest backlog, never accepts, and
 * fills its own accept queue; from then on the kernel drops new SYNs, so a
 * client's connect hangs until its own timeout. Prints the port, then waits
 * to be killed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

int
main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof a;
	int l, i;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 0) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &alen) < 0) {
		perror("blackhole");
		return 1;
	}
	/* Connect to ourselves until one connect does not complete: the queue
	 * is full. The sockets stay open so it stays full. */
	for (i = 0; i < 64; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		struct pollfd p = { .fd = c, .events = POLLOUT };

		if (c < 0 || fcntl(c, F_SETFL, O_NONBLOCK) < 0) {
			perror("blackhole");
			return 1;
		}
		connect(c, (struct sockaddr *)&a, sizeof a);
		if (poll(&p, 1, 300) == 0)
			break;
	}
	if (i == 64) {
		fprintf(stderr, "blackhole: the accept queue never filled\n");
		return 1;
	}
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	for (;;)
		pause();
}
